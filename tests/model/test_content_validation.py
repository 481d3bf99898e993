"""A model whose checksums match but whose content is unsound is refused at load, with one line
naming the file, the column (or manifest field) and an example row; never a crash.

Each case edits a valid model (tests/model/conftest.py ``tiny_model``) and re-signs it
(tests/model/tamper.py): checksums, sizes, row counts and model_version all match again, so
only the content validation can catch it. Every case is loaded with and without checksum
verification: the content is checked either way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from basketry.model import (
    ModelContentError,
    ModelError,
    ModelFormatError,
    ModelIntegrityError,
    is_model_directory,
    items_table,
    load_model,
    read_manifest,
    validate_content,
    write_model,
)
from basketry.model.format import ITEMS_FILE, MANIFEST_FILE, RULES_FILE
from tests.model.conftest import make_rules
from tests.model.tamper import resign, set_cell, tamper_manifest, tamper_table

IDS = pa.list_(pa.int32())


def rules_cell(column: str, row: int, value: Any, type_: pa.DataType | None = None
               ) -> tuple[str, Callable[[pa.Table], pa.Table]]:
    return RULES_FILE, lambda t: set_cell(t, column, row, value, type_)


def items_cell(column: str, row: int, value: Any) -> tuple[str, Callable[[pa.Table], pa.Table]]:
    return ITEMS_FILE, lambda t: set_cell(t, column, row, value)


def counts(**values: Any) -> Callable[[dict], None]:
    return lambda m: m["counts"].update(values)


def field(key: str, value: Any) -> Callable[[dict], None]:
    return lambda m: m.update({key: value})


# (case id, table edit or manifest edit, error class, what the message must say)
TABLE_CASES: list[tuple[str, tuple[str, Callable[[pa.Table], pa.Table]], type, str]] = [
    # item ids: the scorer indexes arrays by them without bounds checks
    ("consequent-1e9", rules_cell("consequent", 0, [10**9], IDS), ModelContentError,
     r"rules\.parquet: column 'consequent', row 0: item id 1000000000 is outside 0\.\.4"),
    ("consequent-negative", rules_cell("consequent", 2, [-1], IDS), ModelContentError,
     r"column 'consequent', row 2: item id -1 is outside"),
    ("antecedent-n-items", rules_cell("antecedent", 3, [0, 5], IDS), ModelContentError,
     r"column 'antecedent', row 3: item id 5 is outside 0\.\.4"),
    ("antecedent-int32-min", rules_cell("antecedent", 1, [-(2**31)], IDS), ModelContentError,
     r"column 'antecedent', row 1: item id -2147483648 is outside"),
    ("antecedent-duplicate", rules_cell("antecedent", 3, [1, 1], IDS), ModelContentError,
     r"column 'antecedent', row 3: item id 1 appears twice"),
    ("consequent-duplicate", rules_cell("consequent", 5, [0, 0], IDS), ModelContentError,
     r"column 'consequent', row 5: item id 0 appears twice"),
    ("antecedent-unordered", rules_cell("antecedent", 4, [1, 0], IDS), ModelContentError,
     r"column 'antecedent', row 4: item ids are not ascending"),
    ("overlap", rules_cell("consequent", 4, [1], IDS), ModelContentError,
     r"column 'consequent', row 4: item id 1 is also in the antecedent"),
    ("overlap-multi", rules_cell("consequent", 5, [1, 3], IDS), ModelContentError,
     r"column 'consequent', row 5: item id 3 is also in the antecedent"),
    ("consequent-empty", rules_cell("consequent", 1, [], IDS), ModelContentError,
     r"column 'consequent', row 1: is empty"),
    ("antecedent-empty", rules_cell("antecedent", 0, [], IDS), ModelContentError,
     r"column 'antecedent', row 0: is empty"),
    ("antecedent-null", rules_cell("antecedent", 2, None, IDS), ModelContentError,
     r"column 'antecedent', row 2: is null"),
    ("consequent-null-id", rules_cell("consequent", 1, [None], IDS), ModelContentError,
     r"column 'consequent', row 1: holds a null item id"),
    # counts
    ("count-zero", rules_cell("count", 0, 0), ModelContentError,
     r"column 'count', row 0: count 0 is not >= 1"),
    ("count-negative", rules_cell("count", 1, -5), ModelContentError,
     r"column 'count', row 1: count -5 is not >= 1"),
    ("count-above-antecedent", rules_cell("count", 0, 51), ModelContentError,
     r"column 'count', row 0: count 51 exceeds antecedent_count 50"),
    ("count-above-consequent", rules_cell("count", 0, 41), ModelContentError,
     r"column 'count', row 0: count 41 exceeds consequent_count 40"),
    ("antecedent-count-above-n", rules_cell("antecedent_count", 2, 101), ModelContentError,
     r"column 'antecedent_count', row 2: antecedent_count 101 exceeds counts\.n_baskets 100"),
    ("consequent-count-above-n", rules_cell("consequent_count", 2, 2**62), ModelContentError,
     r"column 'consequent_count', row 2: consequent_count \d+ exceeds counts\.n_baskets"),
    ("count-null", rules_cell("count", 3, None), ModelContentError,
     r"column 'count', row 3: is null"),
    ("count-as-float", rules_cell("count", 3, 1.5, pa.float64()), ModelError,
     r"rules\.parquet does not fit the model format: .*1\.5"),
    # measures
    ("confidence-nan", rules_cell("confidence", 1, math.nan), ModelContentError,
     r"column 'confidence', row 1: nan is not a finite number"),
    ("lift-inf", rules_cell("lift", 0, math.inf), ModelContentError,
     r"column 'lift', row 0: inf is not a finite number"),
    ("conviction-nan", rules_cell("conviction", 0, math.nan), ModelContentError,
     r"column 'conviction', row 0: nan is not a number or \+inf"),
    ("conviction-minus-inf", rules_cell("conviction", 0, -math.inf), ModelContentError,
     r"column 'conviction', row 0: -inf is not a number or \+inf"),
    ("conviction-negative", rules_cell("conviction", 0, -1.0), ModelContentError,
     r"column 'conviction', row 0: -1\.0 is not >= 0"),
    ("leverage-inf", rules_cell("leverage", 4, -math.inf), ModelContentError,
     r"column 'leverage', row 4: -inf is not a finite number"),
    ("zhang-nan", rules_cell("zhang", 4, math.nan), ModelContentError,
     r"column 'zhang', row 4: nan is not a finite number"),
    ("certainty-inf", rules_cell("certainty", 4, math.inf), ModelContentError,
     r"column 'certainty', row 4: inf is not a finite number"),
    ("support-above-1", rules_cell("support", 2, 1.5), ModelContentError,
     r"column 'support', row 2: 1\.5 is not within \[0, 1\]"),
    ("consequent-support-negative", rules_cell("consequent_support", 2, -0.1),
     ModelContentError, r"column 'consequent_support', row 2: -0\.1 is not within \[0, 1\]"),
    ("confidence-above-1", rules_cell("confidence", 3, 1.0000000000000002), ModelContentError,
     r"column 'confidence', row 3: 1\.0000000000000002 is not within \[0, 1\]"),
    ("p-value-negative", rules_cell("p_value", 0, -1e-300), ModelContentError,
     r"column 'p_value', row 0: -1e-300 is not within \[0, 1\]"),
    ("jaccard-above-1", rules_cell("jaccard", 0, 2.0), ModelContentError,
     r"column 'jaccard', row 0: 2\.0 is not within \[0, 1\]"),
    ("lift-negative", rules_cell("lift", 1, -2.0), ModelContentError,
     r"column 'lift', row 1: -2\.0 is not >= 0"),
    # items
    ("item-duplicate", items_cell("item", 3, "b"), ModelContentError,
     r"items\.parquet: column 'item', row 3: the item 'b' is also in row 1"),
    ("item-null", items_cell("item", 2, None), ModelContentError,
     r"items\.parquet: column 'item', row 2: is null"),
    ("item-count-negative", items_cell("count", 4, -1), ModelContentError,
     r"items\.parquet: column 'count', row 4: count -1 is not within 0\.\.100"),
    ("item-count-above-n", items_cell("count", 0, 101), ModelContentError,
     r"items\.parquet: column 'count', row 0: count 101 is not within 0\.\.100"),
    ("item-count-null", items_cell("count", 1, None), ModelContentError,
     r"items\.parquet: column 'count', row 1: is null"),
    ("items-one-less", (ITEMS_FILE, lambda t: t.slice(0, 4)), ModelContentError,
     r"manifest\.json: field 'counts\.n_items' is 5 but items\.parquet has 4 rows"),
]

MANIFEST_CASES: list[tuple[str, Callable[[dict], None], type, str]] = [
    ("format-version-true", field("format_version", True), ModelFormatError,
     r"format_version True"),
    ("format-version-float", field("format_version", 1.0), ModelFormatError,
     r"format_version 1\.0"),
    ("format-version-string", field("format_version", "1"), ModelFormatError,
     r"format_version '1'"),
    ("n-baskets-zero", counts(n_baskets=0), ModelContentError,
     r"manifest\.json: field 'counts\.n_baskets' must be a whole number >= 1, got 0"),
    ("n-baskets-negative", counts(n_baskets=-100), ModelContentError,
     r"field 'counts\.n_baskets' .* got -100"),
    ("n-baskets-true", counts(n_baskets=True), ModelContentError,
     r"field 'counts\.n_baskets' .* got True"),
    ("n-baskets-float", counts(n_baskets=100.0), ModelContentError,
     r"field 'counts\.n_baskets' .* got 100\.0"),
    ("n-baskets-string", counts(n_baskets="100"), ModelContentError,
     r"field 'counts\.n_baskets' .* got '100'"),
    ("n-baskets-missing", lambda m: m["counts"].pop("n_baskets"), ModelContentError,
     r"field 'counts\.n_baskets' .* got None"),
    ("n-baskets-below-counts", counts(n_baskets=59), ModelContentError,
     r"items\.parquet: column 'count', row 4: count 60 is not within 0\.\.59"),
    ("n-items-wrong", counts(n_items=6), ModelContentError,
     r"field 'counts\.n_items' is 6 but items\.parquet has 5 rows"),
    ("n-rules-wrong", counts(n_rules=5), ModelContentError,
     r"field 'counts\.n_rules' is 5 but rules\.parquet has 6 rows"),
    ("n-rules-bool", counts(n_rules=False), ModelContentError,
     r"field 'counts\.n_rules' must be a whole number >= 0, got False"),
    ("counts-list", field("counts", [100, 5, 6]), ModelFormatError,
     r"field 'counts' must be an object"),
    ("scoring-unknown", field("scoring", {"method": "evil"}), ModelContentError,
     r"field 'scoring': unknown scoring method 'evil'"),
    ("scoring-string", field("scoring", "evil"), ModelContentError,
     r"field 'scoring': unknown scoring method 'evil'"),
    ("scoring-number", field("scoring", 5), ModelContentError,
     r"field 'scoring' must be an object, got 5"),
    ("scoring-negative", field("scoring", {"method": "smoothed", "prior_weight": -1}),
     ModelContentError, r"field 'scoring': scoring parameter prior_weight must be a finite"),
    ("scoring-nan", field("scoring", {"method": "smoothed", "combine": math.nan}),
     ModelContentError, r"field 'scoring': scoring parameter combine must be a finite"),
    ("scoring-bool", field("scoring", {"method": "smoothed", "combine": True}),
     ModelContentError, r"field 'scoring': scoring parameter combine must be a finite"),
    ("scoring-extra-parameter", field("scoring", {"method": "lift", "prior_weight": 1}),
     ModelContentError, r"field 'scoring': scoring method 'lift' has no parameter"),
    ("parameters-list", field("parameters", [1, 2]), ModelContentError,
     r"field 'parameters' must be an object"),
    ("files-rows", lambda m: m["files"][RULES_FILE].update(rows=7, resign=False),
     ModelContentError,
     r"field 'files\.rules\.parquet\.rows' is 7 but rules\.parquet has 6 rows"),
    ("files-entry-string", lambda m: m["files"].update({RULES_FILE: "x"}), ModelContentError,
     r"field 'files\.rules\.parquet' must be an object"),
    ("unsafe-file-name", lambda m: m["files"].update({"../x": {}}), ModelFormatError,
     r"unsafe file name '\.\./x'"),
]

# edits of what model_version covers, left un-re-versioned: the edit is detected
VERSION_CASES: list[tuple[str, Callable[[dict], None]]] = [
    ("model-version-edited", field("model_version", "0123456789abcdef")),
    ("scoring-edited", field("scoring", {"method": "lift"})),
    ("parameters-edited", lambda m: m["parameters"].update(min_support=0.5)),
    ("fingerprint-edited", field("dataset", {"fingerprint": "sha256:" + "0" * 64})),
    # within the bounds the counts allow, but it changes every fallback score
    ("n-baskets-edited", lambda m: m["counts"].update(n_baskets=m["counts"]["n_baskets"] + 1)),
    ("version-of-shortened", lambda m: m["version_of"].remove("counts")),
]


def _snapshot(model: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(model.iterdir())}


@pytest.mark.parametrize("verify", [True, False], ids=["verified", "unverified"])
@pytest.mark.parametrize(("name", "edit", "error", "message"), TABLE_CASES,
                         ids=[c[0] for c in TABLE_CASES])
def test_a_tampered_table_is_refused(tiny_model: Path, name: str, edit: tuple, error: type,
                                     message: str, verify: bool) -> None:
    file_name, change = edit
    tamper_table(tiny_model, file_name, change)
    before = _snapshot(tiny_model)
    with pytest.raises(error, match=message) as raised:
        load_model(tiny_model, verify=verify)
    assert "\n" not in str(raised.value)
    assert _snapshot(tiny_model) == before  # loading changes nothing


@pytest.mark.parametrize("verify", [True, False], ids=["verified", "unverified"])
@pytest.mark.parametrize(("name", "edit", "error", "message"), MANIFEST_CASES,
                         ids=[c[0] for c in MANIFEST_CASES])
def test_a_tampered_manifest_is_refused(tiny_model: Path, name: str, edit: Callable,
                                        error: type, message: str, verify: bool) -> None:
    tamper_manifest(tiny_model, edit)
    with pytest.raises(error, match=message) as raised:
        load_model(tiny_model, verify=verify)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("verify", [True, False], ids=["verified", "unverified"])
@pytest.mark.parametrize(("name", "edit"), VERSION_CASES, ids=[c[0] for c in VERSION_CASES])
def test_an_edit_of_what_model_version_covers_is_detected(
        tiny_model: Path, name: str, edit: Callable, verify: bool) -> None:
    tamper_manifest(tiny_model, edit, version=False)
    with pytest.raises(ModelIntegrityError, match=r"manifest\.json: field 'model_version' is "
                       r"[0-9a-f]{16} but the manifest's (counts, )?files, fingerprint, "
                       r"parameters, scoring give [0-9a-f]{16}"):
        load_model(tiny_model, verify=verify)


def test_the_tamper_helper_alone_changes_nothing_loading_can_see(tiny_model: Path) -> None:
    """The control: re-signing an untouched model, or a sound edit, loads (so the cases above
    fail because of their edit, not because of the helper)."""
    version = read_manifest(tiny_model)["model_version"]
    resign(tiny_model)
    assert load_model(tiny_model).version == version
    tamper_table(tiny_model, RULES_FILE, lambda t: set_cell(t, "lift", 0, 1e300))
    tamper_manifest(tiny_model, field("scoring", {"method": "smoothed", "prior_weight": 0}))
    model = load_model(tiny_model)
    assert model.version != version and model.scoring["prior_weight"] == 0.0
    assert [r.item for r in model.recommend(["a"], k=5).items]


def test_what_the_writer_produces_is_within_every_check(tiny_model: Path) -> None:
    """Conviction is +inf for a rule of confidence 1, as the writer computes it; -0.0 is a
    support of 0; a model without rules and an item no basket holds (count 0) load."""
    tamper_table(tiny_model, RULES_FILE, lambda t: set_cell(
        set_cell(t, "conviction", 1, math.inf), "leverage", 1, -0.0))
    load_model(tiny_model)
    empty = write_model(tiny_model.parent / "empty", items=items_table(["x", "y"], [0, 1]),
                        rules=make_rules([], n=1), n_baskets=1, parameters={})
    model = load_model(empty)
    assert [r.item for r in model.recommend([], k=3).items] == ["y", "x"]


def test_the_writer_refuses_what_loading_would_refuse(tmp_path: Path) -> None:
    items = items_table(["a", "b", "c"], [5, 4, 3])
    good = make_rules([([0], [1], 3, 5, 4)], n=10)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"rules": make_rules([([0], [3], 3, 5, 4)], n=10)}, r"item id 3 is outside 0\.\.2"),
        ({"rules": make_rules([([0], [0], 3, 5, 5)], n=10)}, r"also in the antecedent"),
        ({"n_baskets": 0}, r"n_baskets must be a whole number >= 1, got 0"),
        ({"n_baskets": True}, r"n_baskets must be a whole number >= 1, got True"),
        ({"n_baskets": 4}, r"items table: column 'count', row 0: count 5 is not within"),
        ({"scoring": {"method": "evil"}}, r"unknown scoring method 'evil'"),
        ({"items": items_table(["a", "a", "c"], [5, 4, 3])}, r"the item 'a' is also in row 0"),
        ({"extra": {"model_version": "x"}}, r"would replace the writer's own"),
    ]
    for change, message in cases:
        kwargs: dict[str, Any] = dict(items=items, rules=good, n_baskets=10, parameters={})
        kwargs.update(change)
        with pytest.raises(ModelError, match=message):
            write_model(tmp_path / "m", **kwargs)
        assert list(tmp_path.iterdir()) == []  # nothing written, no staging left


def test_numpy_values_in_the_manifest_give_a_version_the_reader_derives_again(
        tmp_path: Path) -> None:
    """Parameters as numpy scalars and arrays are written as JSON numbers and lists, and the
    version is derived from what is written, so the model loads."""
    path = write_model(tmp_path / "m", items=items_table(["a", "b"], [2, 1]),
                       rules=make_rules([([0], [1], 1, 2, 1)], n=2), n_baskets=np.int64(2),
                       parameters={"min_count": np.int64(1), "min_support": np.float32(0.5),
                                   "grid": np.array([1, 2]), "path": tmp_path},
                       dataset={"fingerprint": "fp", "n": np.int32(2)})
    model = load_model(path)
    assert model.manifest["parameters"] == {"min_count": 1, "min_support": 0.5,
                                            "grid": [1, 2], "path": str(tmp_path)}
    assert model.manifest["counts"]["n_baskets"] == 2


@pytest.mark.parametrize("chunk_rows", [10_000, 3_000, 1], ids=["one", "several", "tiny"])
def test_the_row_named_is_the_first_bad_one_of_the_whole_table(chunk_rows: int) -> None:
    """Rules are checked batch by batch (a table read from Parquet comes in chunks); the row
    named counts from the start of the table, whatever the chunks."""
    n = 10_000
    items = items_table([f"i{i}" for i in range(3)], [n, n, n])
    rules = make_rules([([0], [1], 1, 2, 2)] * n, n=n)
    ids = np.ones(n, dtype=np.int32)
    ids[[7017, 7099, 9000]] = [7, 8, 9]
    rules = rules.set_column(1, "consequent", pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32)), pa.array(ids)))
    rules = pa.concat_tables([rules.slice(i, chunk_rows) for i in range(0, n, chunk_rows)])
    assert rules.column("consequent").num_chunks == -(-n // chunk_rows)
    with pytest.raises(ModelContentError, match=r"^rules table: column 'consequent', row 7017: "
                       r"item id 7 is outside 0\.\.2 \(the rows of the items table\)$"):
        validate_content(items, rules, n_baskets=n)
    conf = rules.column("confidence").to_pylist()
    conf[8888] = math.nan
    rules = rules.set_column(rules.column_names.index("confidence"), "confidence",
                             pa.chunked_array([conf[i:i + chunk_rows]
                                               for i in range(0, n, chunk_rows)]))
    rules = rules.set_column(1, "consequent", pa.array([[1]] * n, IDS))
    with pytest.raises(ModelContentError, match=r"column 'confidence', row 8888: nan is not"):
        validate_content(items, rules, n_baskets=n)


# -- overwrite ---------------------------------------------------------------------------


def _model_kwargs(**change: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(items=items_table(["a", "b"], [2, 1]),
                                  rules=make_rules([([0], [1], 1, 2, 1)], n=2), n_baskets=2,
                                  parameters={})
    kwargs.update(change)
    return kwargs


def test_overwrite_replaces_only_a_model_directory(tmp_path: Path) -> None:
    # an empty directory is written into, with or without overwrite
    for overwrite in (False, True):
        empty = tmp_path / f"empty-{overwrite}"
        empty.mkdir()
        write_model(empty, overwrite=overwrite, **_model_kwargs())
        assert is_model_directory(empty)
    # a model directory is replaced with overwrite, and then holds the new model alone
    model = tmp_path / "model"
    write_model(model, **_model_kwargs(parameters={"v": 1}))
    write_model(model, overwrite=True, **_model_kwargs(parameters={"v": 2}))
    assert read_manifest(model)["parameters"] == {"v": 2}
    assert sorted(p.name for p in model.iterdir()) == [ITEMS_FILE, MANIFEST_FILE, RULES_FILE]
    # a broken model (bad content, still recognisably a model) can be replaced
    tamper_manifest(model, counts(n_baskets=0))
    write_model(model, overwrite=True, **_model_kwargs(parameters={"v": 3}))
    assert load_model(model).manifest["parameters"] == {"v": 3}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["empty-False", "empty-True", "model"]  # nothing left aside


@pytest.mark.parametrize("kind", ["data-directory", "file", "model-plus-a-file",
                                  "not-basketry-manifest", "symlink"])
def test_overwrite_never_replaces_anything_else(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "data-directory":
        target.mkdir()
        (target / "baskets.csv").write_text("a,b\n")
    elif kind == "file":
        target.write_text("precious\n")
    elif kind == "model-plus-a-file":
        write_model(target, **_model_kwargs())
        (target / "notes.txt").write_text("mine\n")
    elif kind == "not-basketry-manifest":
        target.mkdir()
        (target / MANIFEST_FILE).write_text(json.dumps({"format": "other"}))
    else:
        (tmp_path / "real").mkdir()
        write_model(tmp_path / "real", **_model_kwargs())
        target.symlink_to(tmp_path / "real")
    before = {p: (p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")}
    with pytest.raises(ModelError) as raised:
        write_model(target, overwrite=True, **_model_kwargs(parameters={"new": True}))
    message = str(raised.value)
    assert str(target) in message and "\n" not in message
    assert re.search(r"not a basketry model|not a directory|not part of its model|"
                     r"symbolic link", message)
    after = {p: (p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")}
    assert after == before  # nothing touched, nothing staged


def test_a_model_written_before_version_of_still_loads(tiny_model: Path) -> None:
    """Models written before ``version_of`` existed: their version covers all but counts."""
    from basketry.model._version import LEGACY_VERSION_OF, content_version

    def legacy(manifest: dict) -> None:
        del manifest["version_of"]
        manifest["model_version"] = content_version(manifest, LEGACY_VERSION_OF)

    tamper_manifest(tiny_model, legacy, version=False)
    assert load_model(tiny_model).version == read_manifest(tiny_model)["model_version"]


@pytest.mark.parametrize("listed", [["files"], "counts", [*["counts"] * 2, "files",
                                    "fingerprint", "parameters", "scoring"], [1, 2]])
def test_a_malformed_version_of_is_refused(tiny_model: Path, listed: object) -> None:
    tamper_manifest(tiny_model, field("version_of", listed), version=False)
    with pytest.raises(ModelContentError, match="version_of"):
        load_model(tiny_model)
