"""``POST /v1/recommendations/after-purchase`` on the real application: the answer and the rule
or evidence behind each item, the shop's earlier orders, exclusions, bad bodies, and a model
without the sequential part (a clear 404 problem document)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from basketry.serving import Settings
from tests.model.sequential_model import make_model
from tests.serving.conftest import client_for

PATH = "/v1/recommendations/after-purchase"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("after")
    return {"with": make_model(root / "with"),
            "without": make_model(root / "without", sequential=False)}


@pytest.fixture
def client(models: dict[str, Path]) -> Iterator[TestClient]:
    with client_for(Settings(model=str(models["with"]))) as c:
        yield c


def test_the_answer_names_the_rule_behind_each_item(client: TestClient):
    response = client.post(PATH, json={"order": ["a", "nope"], "k": 3})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["horizon_days"] == 30.0 and doc["unknown"] == ["nope"]
    items = doc["items"]
    assert [x["item"] for x in items[:2]] == ["a", "z"]
    # a: bought again by 2 of the 3 customers who bought it in a followed order
    assert items[0]["kind"] == "buy_again" and items[0]["rule"] is None
    assert items[0]["buy_again"] == {"times_bought": 1, "repeat_rate": pytest.approx(2 / 3),
                                     "customers": 2, "last_bought": None}
    assert items[0]["score"] == pytest.approx(2 / 3)
    # z: every customer who bought a bought z within the horizon (weighted 0.25)
    assert items[1]["kind"] == "sequential" and items[1]["buy_again"] is None
    assert items[1]["rule"]["antecedent"] == ["a"]
    assert items[1]["rule"]["confidence"] == 1.0 and items[1]["rule"]["count"] == 3
    assert items[1]["score"] == pytest.approx(0.25)
    assert items[2]["kind"] == "popular" and len(items) == 3


def test_earlier_orders_add_buy_again_evidence(client: TestClient):
    def first(earlier: list[dict]) -> dict:
        body = {"order": ["z"], "date": "2024-03-01", "earlier_orders": earlier, "k": 1}
        return client.post(PATH, json=body).json()["items"][0]

    once = first([{"items": ["a"], "date": "2024-02-01"}])
    twice = first([{"items": ["a"], "date": "2024-02-01"}, {"items": ["a", "b"]}])
    assert once["item"] == twice["item"] == "a"
    assert once["buy_again"]["times_bought"] == 1 and twice["buy_again"]["times_bought"] == 2
    assert once["score"] == pytest.approx(2 / 3)
    assert once["buy_again"]["last_bought"] == "2024-02-01"
    assert twice["score"] == pytest.approx(1 - (1 / 3) ** 2)


def test_excluded_items_are_never_answered(client: TestClient):
    items = client.post(PATH, json={"order": ["a"], "exclude": ["a", "z"], "k": 4}).json()
    assert not {"a", "z"} & {x["item"] for x in items["items"]}


@pytest.mark.parametrize(("body", "field"), [
    ({"order": []}, "order"),
    ({"order": ["a"], "k": 0}, "k"),
    ({"order": ["a", "a"]}, "order[1]"),
    ({"order": ["a"], "extra": 1}, None),
    ({"order": ["a"], "earlier_orders": [{"items": ["b"], "date": "soon"}]},
     "earlier_orders[0].date"),
])
def test_bad_bodies_are_refused_with_the_field(client: TestClient, body, field):
    response = client.post(PATH, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert response.json()["field"] == field


def test_a_model_without_the_part_answers_a_clear_404(models: dict[str, Path]):
    with client_for(Settings(model=str(models["without"]))) as c:
        response = c.post(PATH, json={"order": ["a"]})
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        doc = response.json()
        assert doc["error"] == "no_after_purchase" and "sequential part" in doc["message"]
        # the cart endpoint of the same model is unharmed
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200


def test_the_endpoint_is_in_the_openapi_document(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths[PATH]
