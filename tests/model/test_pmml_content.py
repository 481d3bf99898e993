"""PMML import refuses, before writing anything, a document whose content loading would refuse
(an invalid scoring object, counts or measures out of range); PMML export and import replace
only what they wrote before (a PMML document, a model directory), never other files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from basketry.model import load_model
from basketry.training.pmml import PMMLError, export_pmml, import_pmml


@pytest.fixture
def document(tiny_model: Path, tmp_path: Path) -> Path:
    return export_pmml(tiny_model, tmp_path / "model.pmml")


# (case id, regular expression, replacement, what the message must say)
EDITS = [
    ("scoring-evil", r'"method": "confidence"', '"method": "evil"',
     r"manifest: field 'scoring': unknown scoring method 'evil'"),
    ("scoring-negative", r'"scoring": \{"method": "confidence"\}',
     '"scoring": {"method": "smoothed", "prior_weight": -1}',
     r"field 'scoring': scoring parameter prior_weight must be a finite number >= 0"),
    ("no-baskets", r'numberOfTransactions="100"', 'numberOfTransactions="0"',
     r"n_baskets must be a whole number >= 1, got 0"),
    ("count-above-antecedent", r'count="30" antecedent_count="50"',
     'count="51" antecedent_count="50"',
     r"rules table: column 'count', row 0: count 51 exceeds antecedent_count 50"),
    ("count-above-n", r'antecedent_count="50"', 'antecedent_count="1000"',
     r"rules table: column 'antecedent_count', row 0: antecedent_count 1000 exceeds "
     r"counts\.n_baskets 100"),
    ("confidence-nan", r'confidence="0\.6"', 'confidence="NaN"',
     r"rules table: column 'confidence', row 0: nan is not a finite number"),
    ("support-above-1", r'support="0\.3" confidence', 'support="3" confidence',
     r"rules table: column 'support', row 0: 3\.0 is not within \[0, 1\]"),
    ("item-count-above-n", r'<basketry:item count="50" />', '<basketry:item count="500" />',
     r"items table: column 'count', row 0: count 500 is not within 0\.\.100"),
]


@pytest.mark.parametrize(("name", "pattern", "replacement", "message"), EDITS,
                         ids=[e[0] for e in EDITS])
def test_an_unsound_document_is_refused_and_nothing_is_written(
        document: Path, tmp_path: Path, name: str, pattern: str, replacement: str,
        message: str) -> None:
    text = document.read_text(encoding="utf-8")
    edited, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1, pattern
    document.write_text(edited, encoding="utf-8")
    out = tmp_path / "imported"
    with pytest.raises(PMMLError, match=message) as raised:
        import_pmml(document, out)
    assert str(raised.value).startswith(f"{document}: ") and "\n" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.pmml"]


def test_a_sound_document_still_imports_and_loads(document: Path, tiny_model: Path,
                                                  tmp_path: Path) -> None:
    imported = import_pmml(document, tmp_path / "imported")
    assert load_model(imported).version == load_model(tiny_model).version


def test_import_replaces_only_a_model_directory(document: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "baskets.csv").write_text("a,b\n")
    with pytest.raises(PMMLError, match="not a basketry model directory"):
        import_pmml(document, data, overwrite=True)
    assert [p.name for p in data.iterdir()] == ["baskets.csv"]
    # the target is checked before the document is read: a bad document gets the same answer
    with pytest.raises(PMMLError, match="not a basketry model directory"):
        import_pmml(tmp_path / "missing.pmml", data, overwrite=True)
    model = import_pmml(document, tmp_path / "m")
    assert import_pmml(document, model, overwrite=True) == model
    load_model(model)


def test_export_replaces_only_a_pmml_document(tiny_model: Path, document: Path,
                                              tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("invoice,item\n1,a\n")
    with pytest.raises(PMMLError, match=r"sales\.csv is not a PMML document"):
        export_pmml(tiny_model, data, overwrite=True)
    assert data.read_text() == "invoice,item\n1,a\n"
    with pytest.raises(PMMLError, match="already exists"):
        export_pmml(tiny_model, document)
    export_pmml(tiny_model, document, overwrite=True)  # a PMML document: replaced
    empty = tmp_path / "empty.pmml"
    empty.write_bytes(b"")
    export_pmml(tiny_model, empty, overwrite=True)
    assert b"<PMML" in empty.read_bytes()
    link = tmp_path / "link.pmml"
    link.symlink_to(document)
    with pytest.raises(PMMLError, match="symbolic link"):
        export_pmml(tiny_model, link, overwrite=True)
    with pytest.raises(PMMLError, match="is a directory"):
        export_pmml(tiny_model, tmp_path, overwrite=True)
