"""The sequential part of the model format: written, read back and verified; models without it
load as before; tampering is detected (bytes by the checksums, re-signed edits by the content
checks)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from basketry.model import ModelContentError, ModelError, ModelIntegrityError, load_model
from basketry.model.format import REPEAT_FILE, SEQUENTIAL_RULES_FILE
from tests.model.sequential_model import make_model
from tests.model.tamper import read_json, resign, set_cell, tamper_manifest, tamper_table


@pytest.fixture
def model(tmp_path):
    return make_model(tmp_path / "m")


def test_the_part_reads_back_as_written(model):
    loaded = load_model(model)
    part = loaded.artifact.sequential
    assert part is not None
    manifest = read_json(model)
    assert {SEQUENTIAL_RULES_FILE, REPEAT_FILE} <= set(manifest["files"])
    assert manifest["counts"]["sequential"] == part.counts()
    assert manifest["parameters"]["sequential"]["horizon_days"] == 30.0
    assert part.n_customers == 5
    items = list(loaded.items)
    rules = {(tuple(items[i] for i in r["antecedent"]), items[r["consequent"]]): r
             for r in part.rules.to_pylist()}
    assert rules[(("a",), "z")]["count"] == 3
    # the model's co-purchase side is untouched
    assert loaded.recommend(["a"], k=1).items[0].item == "b"


def test_a_model_without_the_part_loads(tmp_path):
    old = make_model(tmp_path / "old", sequential=False)
    manifest = read_json(old)
    assert SEQUENTIAL_RULES_FILE not in manifest["files"]
    assert "sequential" not in manifest["counts"]
    assert load_model(old).artifact.sequential is None


def test_changed_bytes_are_detected(model):
    with open(model / SEQUENTIAL_RULES_FILE, "r+b") as fh:
        fh.seek(40)
        byte = fh.read(1)
        fh.seek(40)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model(model)


def test_a_removed_file_is_detected(model):
    (model / REPEAT_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_model(model)


def test_an_edited_count_without_resigning_the_version_is_detected(model):
    tamper_manifest(model, lambda m: m["counts"]["sequential"].update(n_customers=50),
                    version=False)
    with pytest.raises(ModelIntegrityError, match="model_version"):
        load_model(model)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("consequent", 99, "outside 0"),
    ("confidence", float("nan"), "not a finite number"),
    ("confidence", 0.99, "does not follow from the counts"),
    ("count", 1000, "exceeds antecedent_count"),
])
def test_resigned_rule_edits_are_refused(model, column, value, message):
    tamper_table(model, SEQUENTIAL_RULES_FILE, lambda t: set_cell(t, column, 0, value))
    with pytest.raises(ModelContentError, match=message):
        load_model(model)


def test_a_resigned_antecedent_holding_the_consequent_is_refused(model):
    def edit(table: pa.Table) -> pa.Table:
        consequent = table.column("consequent")[0].as_py()
        return set_cell(table, "antecedent", 0, [consequent])

    tamper_table(model, SEQUENTIAL_RULES_FILE, edit)
    with pytest.raises(ModelContentError, match="also in the antecedent"):
        load_model(model)


def test_resigned_repeat_edits_are_refused(model):
    tamper_table(model, REPEAT_FILE, lambda t: set_cell(t, "item", 0, -1))
    with pytest.raises(ModelContentError, match="outside 0"):
        load_model(model)


def test_resigned_counts_that_disagree_with_the_table_are_refused(model):
    tamper_manifest(model, lambda m: m["counts"]["sequential"].update(n_rules=0))
    with pytest.raises(ModelContentError, match="n_rules"):
        load_model(model)


def test_a_bad_horizon_is_refused(model):
    tamper_manifest(model, lambda m: m["parameters"]["sequential"].update(horizon_days=0))
    with pytest.raises(ModelContentError, match="horizon_days"):
        load_model(model)


def test_one_file_of_the_part_alone_is_refused(model):
    def drop(m):
        del m["files"][REPEAT_FILE]

    tamper_manifest(model, drop)
    (model / REPEAT_FILE).unlink()
    with pytest.raises(ModelError, match="without its companion"):
        load_model(model)
    resign(model)
