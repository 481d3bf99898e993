"""`basketry layout` end to end: bad inputs are one line and write nothing; plans from data, a
model and a current layout; the bundled sample and groceries."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import sample_path
from basketry.model import read_manifest
from basketry.model.layout import read_layout
from tests.shared_data import shared_file

GROUPS = [["milk", "butter", "cheese"], ["bread", "jam", "honey"], ["beer", "chips", "salsa"]]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    lines = []
    for k in range(40):
        group = GROUPS[k % 3]
        lines.append(" ".join(group[: 2 + k % 2]))
    lines += ["milk bread", "beer milk"]
    (tmp_path / "sales.dat").write_text("\n".join(lines) + "\n")
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD = [
    ("more products than capacity", ["--aisles", "2", "--capacity", "4"], {},
     "9 products but the 2 aisles hold only 8"),
    ("categories name unknown products", ["--categories", "{cats}"],
     {"cats": "item,category\nmilk,dairy\nghost,x\nspook,x\n"}, "'ghost', 'spook' (2 in all)"),
    ("fixed names unknown products", ["--fixed", "{fixed}"], {"fixed": "ghost,1\n"}, "'ghost'"),
    ("current names unknown products", ["--current", "{current}"],
     {"current": "item,aisle\nmilk,1\nghost,2\n"}, "current.csv: it names products"),
    ("fixed products break apart", ["--aisles", "3", "--categories", "{cats}", "--fixed",
                                    "{fixed}"],
     {"cats": "milk,dairy\nbread,bakery\n!apart,dairy,bakery\n", "fixed": "milk,1\nbread,1\n"},
     "kept apart"),
    ("fixed products over capacity", ["--aisles", "3", "--fixed", "{fixed}"],
     {"fixed": "milk,1\nbread,1\nbeer,1\njam,1\n"}, "aisle 1 has capacity 3"),
    ("together category split by anchors", ["--aisles", "3", "--categories", "{cats}",
                                            "--fixed", "{fixed}"],
     {"cats": "milk,dairy\nbutter,dairy\n!together,dairy\n", "fixed": "milk,1\nbutter,2\n"},
     "kept together but its fixed products stand in aisles 1 and 2"),
    ("a rule on a category nobody has", ["--categories", "{cats}"],
     {"cats": "milk,dairy\n!together,frozen\n"}, "'frozen'"),
    ("a malformed rule", ["--categories", "{cats}"], {"cats": "milk,dairy\n!close,dairy\n"},
     "expected '!together,CATEGORY'"),
    ("fixed aisle beyond the store", ["--aisles", "3", "--fixed", "{fixed}"],
     {"fixed": "milk,7\n"}, "aisle 7, but the store has 3 aisles"),
    ("capacities file not numbers", ["--capacities", "{caps}"], {"caps": "10\nten\n"},
     "capacity 'ten' is not a whole number"),
    ("bad move budget", ["--current", "{current}", "--max-moves", "lots"],
     {"current": "item,aisle\nmilk,1\n"}, "--max-moves 'lots'"),
    ("unknown weighting", ["--weighting", "vibes"], {}, "unknown weighting 'vibes'"),
    ("a map in an unknown format", ["--map", "{caps}"], {"caps": "10\n"}, "drawn as .svg or .png"),
    ("a graph not html", ["--graph", "{caps}"], {"caps": "10\n"}, "is an .html page"),
]


@pytest.mark.parametrize(("case", "args", "files", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_writes_nothing(shop: Path, case: str, args: list[str],
                                                  files: dict[str, str], needle: str) -> None:
    names = {"cats": "cats.csv", "fixed": "fixed.csv", "current": "current.csv",
             "caps": "caps.txt"}
    paths = {key: write(shop / names[key], text) for key, text in files.items()}
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    before = snapshot(shop)
    status, _out, err = invoke("layout", shop / "sales.dat", "--out", shop / "plan", *argv)
    assert status == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert snapshot(shop) == before  # no plan directory, nothing changed


def test_plan_with_constraints_and_moves(shop: Path) -> None:
    cats = write(shop / "cats.csv", "item,category\nmilk,dairy\nbutter,dairy\ncheese,dairy\n"
                 "beer,drinks\n!together,dairy\n!apart,dairy,drinks\n")
    fixed = write(shop / "fixed.csv", "item,aisle,position\nbeer,3,1\n")
    status, out, err = invoke("layout", shop / "sales.dat", "--aisles", "3", "--capacity", "4",
                              "--categories", cats, "--fixed", fixed, "--out", shop / "plan",
                              "--evaluate", shop / "sales.dat", "--output", "json")
    assert status == 0, err
    doc = json.loads(out)
    plan = read_layout(shop / "plan")
    assert doc["sha256"] == plan.to_json()["sha256"]
    dairy = {plan.slot(x).aisle for x in ("milk", "butter", "cheese")}
    assert len(dairy) == 1 and plan.slot("beer").aisle == 3 and plan.slot("beer").position == 1
    assert plan.slot("beer").fixed and plan.slot("milk").category == "dairy"
    assert dairy != {3}
    # the planted groups share aisles
    for group in GROUPS[1:]:
        assert len({plan.slot(x).aisle for x in group}) == 1
    ev = plan.evaluation
    assert ev is not None and "category_only" in ev and ev["random"]["draws"] == 10
    with (shop / "plan" / "layout.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [*rows[0]] == ["item", "label", "aisle", "position", "fixed", "category"]
    assert len(rows) == 9
    # the plan as the current layout, everything shuffled across aisles: moves win it back
    shuffled = shop / "current.csv"
    with shuffled.open("w") as f:
        f.write("item,aisle,position\n")
        for k, row in enumerate(sorted(rows, key=lambda r: r["item"])):
            f.write(f"{row['item']},{1 + k % 3},{1 + k // 3}\n")
    status, out, err = invoke("layout", shop / "sales.dat", "--current", shuffled,
                              "--max-moves", "4", "--out", shop / "moved")
    assert status == 0, err
    with (shop / "moved" / "moves.csv").open() as f:
        moves = list(csv.DictReader(f))
    assert 0 < len(moves) <= 4
    assert [*moves[0]] == ["item", "label", "from_aisle", "to_aisle", "to_position", "gain"]
    assert sum(float(m["gain"]) for m in moves) > 0
    assert "objective" in out


def test_model_source_saves_the_plan_next_to_the_model(shop: Path) -> None:
    model = shop / "model"
    status, _out, err = invoke("mine", shop / "sales.dat", "--out", model, "--min-support", "2",
                               "--min-confidence", "0.01")
    assert status == 0, err
    status, _out, err = invoke("layout", model, "--aisles", "3", "--save-to-model")
    assert status == 0, err
    plan = read_layout(model)
    assert plan.source == "model"
    assert plan.model_version == read_manifest(model)["model_version"]
    assert plan.n_items == 9


def test_bundled_sample_end_to_end(tmp_path: Path) -> None:
    status, out, err = invoke("layout", sample_path(), "--aisles", "30", "--out", tmp_path,
                              "--weighting", "jaccard")
    assert status == 0, err
    plan = read_layout(tmp_path / "layout.json")
    assert plan.n_aisles == 30 and plan.n_items > 3000
    labelled = [s for s in plan.slots() if s.label]
    assert len(labelled) > 0.9 * plan.n_items  # labels from Description
    assert labelled[0].label in out or any(s.label in out for s in plan.aisles[0].items[:5])
    assert plan.edges and plan.links


def test_groceries_end_to_end(tmp_path: Path) -> None:
    data = shared_file("groceries.csv")
    status, out, err = invoke("layout", data, "--aisles", "10", "--out", tmp_path,
                              "--map", tmp_path / "map.svg")
    assert status == 0, err
    assert (tmp_path / "map.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    plan = read_layout(tmp_path)
    assert plan.n_items == 169 and plan.slot("whole milk") is not None
    assert plan.aisles[0].items[0].item in out  # the item names are what people read
