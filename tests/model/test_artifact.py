from __future__ import annotations

import json

import pytest

from basketry.model import (
    ModelError,
    ModelFormatError,
    ModelIntegrityError,
    items_table,
    load_model,
    read_manifest,
    write_model,
)
from basketry.model.format import ITEMS_FILE, MANIFEST_FILE, RULES_FILE


def test_manifest_describes_the_model(tiny_model):
    manifest = read_manifest(tiny_model)
    assert manifest["format"] == "basketry-model"
    assert manifest["format_version"] == 1
    assert manifest["counts"] == {"n_baskets": 100, "n_items": 5, "n_rules": 6}
    assert set(manifest["files"]) == {ITEMS_FILE, RULES_FILE}
    for meta in manifest["files"].values():
        assert len(meta["sha256"]) == 64 and meta["bytes"] > 0
    assert manifest["parameters"] == {"min_support": 0.1}
    assert len(manifest["model_version"]) == 16


def test_no_pickle_in_artifact(tiny_model):
    names = sorted(p.name for p in tiny_model.iterdir())
    assert names == sorted([MANIFEST_FILE, ITEMS_FILE, RULES_FILE])
    for p in tiny_model.iterdir():
        assert b"pickle" not in p.read_bytes().lower()


def test_same_content_same_version_and_checksums(tiny_model, tmp_path):
    model = load_model(tiny_model)
    again = write_model(
        tmp_path / "again",
        items=model.artifact.items,
        rules=model.artifact.rules,
        n_baskets=100,
        parameters={"min_support": 0.1},
        scoring=model.manifest["scoring"],
    )
    a, b = read_manifest(tiny_model), read_manifest(again)
    assert a["files"] == b["files"]
    assert a["model_version"] == b["model_version"]


def test_tampered_file_is_refused(tiny_model):
    rules = tiny_model / RULES_FILE
    data = bytearray(rules.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rules.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model(tiny_model)


def test_truncated_file_is_refused(tiny_model):
    items = tiny_model / ITEMS_FILE
    items.write_bytes(items.read_bytes()[:-10])
    with pytest.raises(ModelIntegrityError, match="truncated"):
        load_model(tiny_model)


def test_missing_file_is_refused(tiny_model):
    (tiny_model / RULES_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_model(tiny_model)


def test_newer_format_version_is_refused(tiny_model):
    path = tiny_model / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="format_version 99"):
        load_model(tiny_model)


def test_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="no model directory"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match=r"manifest\.json is missing"):
        load_model(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model(tmp_path / "bad")


def test_manifest_cannot_point_outside(tiny_model):
    path = tiny_model / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["files"]["../escape"] = {"sha256": "0", "bytes": 1, "rows": 0}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="unsafe"):
        load_model(tiny_model)


def test_failed_write_leaves_nothing(tmp_path):
    model_dir = tmp_path / "m"
    items = items_table(["a"], [1])
    with pytest.raises(ModelError):
        write_model(model_dir, items=items, rules=items, n_baskets=1, parameters={})
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tiny_model):
    model = load_model(tiny_model)
    kwargs = dict(items=model.artifact.items, rules=model.artifact.rules, n_baskets=100,
                  parameters={"min_support": 0.2})
    with pytest.raises(ModelError, match="already exists"):
        write_model(tiny_model, **kwargs)
    write_model(tiny_model, overwrite=True, **kwargs)
    assert read_manifest(tiny_model)["parameters"] == {"min_support": 0.2}
    assert [p.name for p in tiny_model.parent.iterdir()] == [tiny_model.name]


def test_rules_must_refer_to_known_items(tiny_model, tmp_path):
    model = load_model(tiny_model)
    with pytest.raises(ModelError, match="outside"):
        write_model(tmp_path / "x", items=model.artifact.items.slice(0, 2),
                    rules=model.artifact.rules, n_baskets=100, parameters={})
