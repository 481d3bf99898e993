"""``GET /v1/layout`` and ``GET /v1/layout/items/{item}`` on the real application: the plan
saved next to the served model (layout.json), its 404s, a tampered plan (503, logged once, the
rest of the service unharmed) and model swaps to a model with another plan or none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from basketry.model.layout import (
    LAYOUT_FILE,
    Aisle,
    AisleLink,
    Edge,
    LayoutPlan,
    Slot,
    write_layout,
)
from basketry.serving import Settings
from tests.serving.conftest import ADMIN, client_for, write_version
from tests.serving.test_server import AUTH, start

SHELVES = [["a", "b", "c"], ["d", "e"], ["f", "g"]]


def make_plan(version: str | None, tag: str = "v1", shelves: list[list[str]] = SHELVES
              ) -> LayoutPlan:
    aisles = tuple(
        Aisle(aisle=n, capacity=4, items=tuple(
            Slot(item=i, label=f"{tag}:{i}", aisle=n, position=p, fixed=i == "d",
                 category="dairy" if i in ("a", "b") else None)
            for p, i in enumerate(items, 1)))
        for n, items in enumerate(shelves, 1))
    links = (AisleLink(1, 2, 0.5), AisleLink(2, 3, 1.5), AisleLink(1, 3, 0.1))
    return LayoutPlan(aisles=aisles,
                      links=tuple(k for k in links if k.b <= len(shelves)),
                      edges=(Edge("a", "b", 3.0), Edge("c", "d", 0.5)),
                      model_version=version, source="model", weighting="lift",
                      params={"aisles": len(shelves)},
                      evaluation={"layout": {"same_aisle": 0.4}, "random": {"same_aisle": 0.1}},
                      created_at="2026-12-05T01:00:00Z")


@pytest.fixture
def planned(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "model"
    version = write_version(path, "v1")
    write_layout(make_plan(version), path)
    return path, version


@pytest.fixture
def client(planned: tuple[Path, str]) -> Iterator[TestClient]:
    with client_for(Settings(model=str(planned[0]), admin_token=ADMIN)) as c:
        yield c


def test_the_plan_is_answered_aisle_by_aisle(client: TestClient,
                                             planned: tuple[Path, str]) -> None:
    version = planned[1]
    r = client.get("/v1/layout")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_version"] == doc["plan_model_version"] == version
    assert (doc["n_items"], doc["n_aisles"]) == (7, 3)
    assert [[s["item"] for s in a["items"]] for a in doc["aisles"]] == SHELVES
    assert doc["aisles"][0]["items"][1] == {"item": "b", "label": "v1:b", "position": 2,
                                            "fixed": False, "category": "dairy"}
    assert doc["aisles"][1]["items"][0]["fixed"] is True
    assert [a["capacity"] for a in doc["aisles"]] == [4, 4, 4]
    assert [(k["a"], k["b"]) for k in doc["links"]] == [(2, 3), (1, 2), (1, 3)]  # strongest 1st
    assert doc["evaluation"] == {"layout": {"same_aisle": 0.4}, "random": {"same_aisle": 0.1}}
    assert (doc["source"], doc["weighting"]) == ("model", "lift") and doc["request_id"]

    one = client.get("/v1/layout", params={"aisle": 2}).json()
    assert [a["aisle"] for a in one["aisles"]] == [2]
    assert [(k["a"], k["b"]) for k in one["links"]] == [(2, 3), (1, 2)]
    assert one["n_items"] == 7  # the whole plan's figures

    missing = client.get("/v1/layout", params={"aisle": 4})
    assert missing.status_code == 404
    assert missing.json()["field"] == "aisle"
    assert missing.json()["message"] == (f"the shelf plan of model version {version} has no "
                                         "aisle 4 (aisles 1..3)")
    for bad in ("0", "x", "-1"):
        answer = client.get("/v1/layout", params={"aisle": bad})
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "aisle"


def test_an_item_is_answered_with_its_place_and_neighbours(client: TestClient,
                                                           planned: tuple[Path, str]) -> None:
    version = planned[1]
    doc = client.get("/v1/layout/items/b").json()
    assert {k: doc[k] for k in ("model_version", "item", "label", "aisle", "position", "fixed",
                                "category", "aisle_size", "adjacent_aisles")} == {
        "model_version": version, "item": "b", "label": "v1:b", "aisle": 1, "position": 2,
        "fixed": False, "category": "dairy", "aisle_size": 3, "adjacent_aisles": [2]}
    assert [s["item"] for s in doc["shelf_neighbours"]] == ["a", "c"]
    end = client.get("/v1/layout/items/d").json()
    assert (end["aisle"], end["position"], end["fixed"]) == (2, 1, True)
    assert [s["item"] for s in end["shelf_neighbours"]] == ["e"]
    assert end["adjacent_aisles"] == [1, 3]
    assert client.get("/v1/layout/items/g").json()["adjacent_aisles"] == [2]

    unknown = client.get("/v1/layout/items/zz")
    assert unknown.status_code == 404
    assert {k: unknown.json()[k] for k in ("error", "field", "message")} == {
        "error": "unknown_item", "field": "item",
        "message": f"item 'zz' is not in the shelf plan of model version {version}"}
    assert client.get(f"/v1/layout/items/{'x' * 500}").status_code == 422


def test_a_model_without_a_plan_is_a_404_naming_its_version(tmp_path: Path) -> None:
    version = write_version(tmp_path / "bare", "v1")
    with client_for(Settings(model=str(tmp_path / "bare"))) as client:
        for path in ("/v1/layout", "/v1/layout/items/a"):
            r = client.get(path)
            assert r.status_code == 404, r.text
            assert r.json()["error"] == "no_layout"
            assert r.json()["message"].startswith(f"no shelf plan for model version {version}")
        # a plan saved while serving is found without a reload
        write_layout(make_plan(version), tmp_path / "bare")
        assert client.get("/v1/layout/items/a").json()["aisle"] == 1


def test_without_a_model_the_plan_is_a_503(tmp_path: Path) -> None:
    with client_for(Settings(model=str(tmp_path / "nowhere"))) as client:
        r = client.get("/v1/layout")
        assert r.status_code == 503 and r.json()["error"] == "no_model"


def _tamper(model: Path) -> None:
    """Change a label without signing again: the checksum no longer matches."""
    path = model / LAYOUT_FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["aisles"][0]["items"][0]["label"] = "changed by hand"
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_a_tampered_plan_is_a_503_and_the_rest_keeps_answering(
        client: TestClient, planned: tuple[Path, str]) -> None:
    model, version = planned
    assert client.get("/v1/layout").status_code == 200
    _tamper(model)
    for path in ("/v1/layout", "/v1/layout/items/a"):
        r = client.get(path)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "layout_invalid"
        assert body["message"] == (f"the shelf plan of model version {version} cannot be used: "
                                   "layout.json: field 'sha256': checksum mismatch: the file "
                                   "was changed after writing")
        assert str(model) not in body["message"]  # no server path in an answer
    assert client.post("/v1/recommendations", json={"basket": ["a"], "k": 2}).status_code == 200
    assert client.get("/readyz").status_code == 200
    # put right: answered again, without a reload
    write_layout(make_plan(version), model)
    assert client.get("/v1/layout").status_code == 200


def test_the_plan_follows_model_swaps(client: TestClient, planned: tuple[Path, str],
                                      tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare_version = write_version(bare, "v2")
    other = tmp_path / "other"
    other_version = write_version(other, "v3")
    write_layout(make_plan(other_version, "v3", [["g", "f", "e", "d"], ["c", "b", "a"]]), other)
    assert client.get("/v1/layout/items/a").json()["aisle"] == 1

    def swap(model: Path) -> None:
        r = client.post("/v1/admin/reload", json={"model": str(model)},
                        headers={"authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200, r.text

    swap(bare)
    r = client.get("/v1/layout")
    assert r.status_code == 404
    assert r.json()["message"].startswith(f"no shelf plan for model version {bare_version}")
    swap(other)
    doc = client.get("/v1/layout/items/a").json()
    assert (doc["model_version"], doc["aisle"], doc["position"], doc["label"]) == (
        other_version, 2, 3, "v3:a")
    assert client.get("/v1/layout").json()["n_aisles"] == 2
    swap(planned[0])
    assert client.get("/v1/layout/items/a").json()["label"] == "v1:a"


def test_a_plan_made_for_another_version_says_so(tmp_path: Path) -> None:
    model = tmp_path / "model"
    version = write_version(model, "v1")
    write_layout(make_plan("0123456789abcdef"), model)
    with client_for(Settings(model=str(model))) as client:
        doc = client.get("/v1/layout").json()
        assert doc["model_version"] == version
        assert doc["plan_model_version"] == "0123456789abcdef"


def test_the_endpoints_are_in_the_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/layout", "/v1/layout/items/{item}"):
        operation = spec["paths"][path]["get"]
        assert operation["tags"] == ["layout"]
        assert {"200", "404", "503"} <= set(operation["responses"])
    assert "LayoutResponse" in spec["components"]["schemas"]


def test_a_real_server_survives_a_tampered_plan_and_logs_it_once(tmp_path: Path) -> None:
    model = tmp_path / "model"
    version = write_version(model, "v1")
    write_layout(make_plan(version), model)
    _tamper(model)
    bare = tmp_path / "bare"
    write_version(bare, "v2")
    for running in start(tmp_path, model):
        http = running.client()
        for _ in range(3):
            r = http.get("/v1/layout/items/b")
            assert r.status_code == 503 and "checksum mismatch" in r.json()["message"]
        assert http.post("/v1/recommendations", json={"basket": ["a"], "k": 2}
                         ).status_code == 200
        refused = [line for line in running.log_lines() if "shelf plan refused" in line]
        assert len(refused) == 1, refused
        r = http.post("/v1/admin/reload", json={"model": str(bare)}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert http.get("/v1/layout").json()["error"] == "no_layout"
        assert running.proc.poll() is None


def test_the_plan_the_command_saves_is_the_plan_served(tmp_path: Path) -> None:
    pytest.importorskip("networkx", reason="the layout extra is not installed")
    from typer.testing import CliRunner

    from basketry.cli import app

    model = tmp_path / "model"
    version = write_version(model, "v1")
    done = CliRunner().invoke(app, ["layout", str(model), "--aisles", "2", "--capacity", "4",
                                    "--save-to-model", "--output", "json"])
    assert done.exit_code == 0, done.output
    saved = json.loads((model / LAYOUT_FILE).read_text(encoding="utf-8"))
    with client_for(Settings(model=str(model))) as client:
        doc = client.get("/v1/layout").json()
        assert doc["model_version"] == doc["plan_model_version"] == version
        assert [[s["item"] for s in a["items"]] for a in doc["aisles"]] == [
            [s["item"] for s in a["items"]] for a in saved["aisles"]]
        placed = {s["item"]: (a["aisle"], s["position"]) for a in saved["aisles"]
                  for s in a["items"]}
        assert set(placed) == {"a", "b", "c", "d", "e", "f", "g"}
        for item, (aisle, position) in placed.items():
            answer = client.get(f"/v1/layout/items/{item}").json()
            assert (answer["aisle"], answer["position"], answer["label"]) == (
                aisle, position, f"v1:{item}")
