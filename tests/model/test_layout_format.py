"""The shelf plan's format: round trip, atomic write, and every check of a read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from basketry.model.layout import (
    FORMAT,
    LAYOUT_FILE,
    Aisle,
    AisleLink,
    Edge,
    LayoutFormatError,
    LayoutPlan,
    Move,
    Slot,
    _digest,
    read_layout,
    write_layout,
)


def make_plan() -> LayoutPlan:
    a1 = Aisle(1, 3, (Slot("x", "Milk", 1, 1), Slot("y", None, 1, 2, fixed=True, category="dairy")))
    a2 = Aisle(2, 2, (Slot("z", "Bread", 2, 1),))
    return LayoutPlan(
        aisles=(a1, a2), links=(AisleLink(1, 2, 0.5),), edges=(Edge("x", "z", 2.5),),
        moves=(Move("z", "Bread", 1, 2, 1, 0.125),), model_version="abc", source="model",
        weighting="lift", params={"aisles": 2}, evaluation={"same_aisle": 0.4},
        created_at="2026-12-05T01:00:00Z")


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    plan = make_plan()
    path = write_layout(plan, tmp_path)
    assert path == tmp_path / LAYOUT_FILE
    back = read_layout(tmp_path)
    assert back == plan
    assert back.slot("y") == Slot("y", None, 1, 2, fixed=True, category="dairy")
    assert back.slot("nope") is None
    assert back.n_items == 3 and back.n_aisles == 2
    assert back.aisle_of() == {"x": 1, "y": 1, "z": 2}
    assert [s.name for s in back.slots()] == ["Milk", "y", "Bread"]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was replaced into place


def test_json_shape() -> None:
    doc = make_plan().to_json()
    assert doc["format"] == FORMAT and len(doc["sha256"]) == 64
    assert doc["aisles"][0]["items"][1] == {"item": "y", "label": None, "position": 2,
                                            "fixed": True, "category": "dairy"}
    assert doc["moves"][0] == {"item": "z", "label": "Bread", "from_aisle": 1, "to_aisle": 2,
                               "to_position": 1, "gain": 0.125}
    assert LayoutPlan.from_json(doc) == make_plan()


def _resigned(doc: dict[str, Any]) -> dict[str, Any]:
    doc["sha256"] = _digest(doc)
    return doc


def _mutations() -> list[tuple[str, Any, str]]:
    def set_(path: str, value: Any) -> Any:
        def f(d: dict[str, Any]) -> None:
            keys = path.split(".")
            target: Any = d
            for k in keys[:-1]:
                target = target[int(k)] if k.isdigit() else target[k]
            last = keys[-1]
            target[int(last) if last.isdigit() else last] = value
        return f

    def dup(d: dict[str, Any]) -> None:
        d["aisles"][1]["items"].append({"item": "x", "label": None, "position": 2,
                                        "fixed": False, "category": None})

    return [
        ("format", set_("format", "basketry-layout/9"), "format"),
        ("source", set_("source", "elsewhere"), "source"),
        ("item in two aisles", dup, "two aisles"),
        ("over capacity", set_("aisles.1.capacity", 0), "over its capacity"),
        ("position gap", set_("aisles.0.items.1.position", 3), "positions must be 1..n"),
        ("aisle numbering", set_("aisles.1.aisle", 5), "numbered 1..A"),
        ("unknown aisle link", set_("links.0.b", 7), "unknown aisle 7"),
        ("self link", set_("links.0.b", 1), "to itself"),
        ("edge to unknown item", set_("edges.0.b", "ghost"), "'ghost'"),
        ("move of unknown item", set_("moves.0.item", "ghost"), "'ghost'"),
        ("move to unknown aisle", set_("moves.0.to_aisle", 9), "unknown aisle 9"),
        ("bool as number", set_("links.0.weight", True), r"weight': expected a number"),
        ("fixed not bool", set_("aisles.0.items.0.fixed", "yes"), "fixed"),
        ("no aisles", set_("aisles", []), "at least one aisle"),
    ]


@pytest.mark.parametrize(("case", "mutate", "expected"), _mutations(),
                         ids=[m[0] for m in _mutations()])
def test_unsound_documents_are_refused(tmp_path: Path, case: str, mutate: Any,
                                       expected: str) -> None:
    doc = copy.deepcopy(make_plan().to_json())
    mutate(doc)
    path = tmp_path / LAYOUT_FILE
    path.write_text(json.dumps(_resigned(doc)))
    with pytest.raises(LayoutFormatError, match=expected) as info:
        read_layout(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def test_checksum_mismatch_and_missing(tmp_path: Path) -> None:
    path = write_layout(make_plan(), tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    doc["aisles"][0]["items"][0]["label"] = "Cream"
    path.write_text(json.dumps(doc))
    with pytest.raises(LayoutFormatError, match="checksum mismatch"):
        read_layout(path)
    del doc["sha256"]
    path.write_text(json.dumps(doc))
    with pytest.raises(LayoutFormatError, match="'sha256': missing"):
        read_layout(path)


def test_non_finite_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / LAYOUT_FILE
    path.write_text(json.dumps(make_plan().to_json()).replace("0.5", "NaN"))
    with pytest.raises(LayoutFormatError, match="invalid JSON"):
        read_layout(path)
    path.write_text("[1, 2]")
    with pytest.raises(LayoutFormatError, match="expected a JSON object"):
        read_layout(path)
    with pytest.raises(LayoutFormatError, match="file not found"):
        read_layout(tmp_path / "missing.json")
    bad = LayoutPlan(aisles=make_plan().aisles, links=(AisleLink(1, 2, float("inf")),))
    with pytest.raises(LayoutFormatError, match="non-finite"):
        write_layout(bad, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_write_refuses_an_unsound_plan(tmp_path: Path) -> None:
    over = LayoutPlan(aisles=(Aisle(1, 1, (Slot("a", None, 1, 1), Slot("b", None, 1, 2))),))
    with pytest.raises(LayoutFormatError, match="over its capacity"):
        write_layout(over, tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()
