"""``POST /v1/orders``: completed orders into a real monitoring store, idempotent by order id,
validated with the field named, and 503 in one line when the store is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")

from basketry.monitoring import MonitorSettings
from basketry.monitoring.store import MonitorStore
from basketry.serving import Settings, create_app
from basketry.serving.capture import Capture
from tests.serving.conftest import write_version

ORDER = {"order_id": "o-1", "time": "2026-05-01T12:30:00Z", "items": ["a", "b"],
         "request_ids": ["req-1"]}


def _client(tmp_path: Path, url: str, *, capture: bool = True, **settings: object
            ) -> TestClient:
    model = tmp_path / "model"
    if not model.exists():
        write_version(model, "v1")
    cap = Capture(MonitorSettings(db=url, capture=capture, connect_timeout=2), explicit=True)
    return TestClient(app=create_app(Settings(model=str(model), **settings), capture=cap))


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'm.db'}"


@pytest.fixture
def client(tmp_path: Path, store_url: str) -> Iterator[TestClient]:
    with _client(tmp_path, store_url, max_orders=3) as c:
        yield c


def _stored(url: str) -> list[tuple]:
    store = MonitorStore(url)
    try:
        return sorted((o["order_id"], tuple(o["items"]), tuple(o["request_ids"]))
                      for o in store.read_orders())
    finally:
        store.close()


def test_orders_are_stored_once_by_order_id(client: TestClient, store_url: str) -> None:
    first = client.post("/v1/orders", json={"orders": [ORDER]},
                        headers={"x-request-id": "send-1"})
    assert first.status_code == 200
    assert first.json() == {"request_id": "send-1", "received": 1, "new": 1, "existing": 0}
    second = {**ORDER, "order_id": "o-2", "time": 1_777_000_000, "items": ["c"]}
    again = client.post("/v1/orders", json={"orders": [ORDER, second, second]})
    assert again.status_code == 200
    assert again.json()["received"] == 3
    assert (again.json()["new"], again.json()["existing"]) == (1, 2)
    assert _stored(store_url) == [("o-1", ("a", "b"), ("req-1",)), ("o-2", ("c",), ("req-1",))]


def test_orders_are_taken_with_capture_off_too(tmp_path: Path, store_url: str) -> None:
    with _client(tmp_path, store_url, capture=False) as c:
        assert c.post("/v1/orders", json={"orders": [ORDER]}).json()["new"] == 1
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200
    store = MonitorStore(store_url)
    try:
        assert store.count("recommendation_events") == 0 and store.count("orders") == 1
    finally:
        store.close()


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{not json", 400, None),
    ([ORDER], 422, None),
    ({}, 422, "orders"),
    ({"orders": []}, 422, "orders"),
    ({"orders": [ORDER] * 4}, 422, "orders"),  # more than max_orders=3
    ({"orders": [ORDER], "extra": 1}, 422, "extra"),
    ({"orders": [{**ORDER, "order_id": ""}]}, 422, "orders[0].order_id"),
    ({"orders": [{k: v for k, v in ORDER.items() if k != "time"}]}, 422, "orders[0].time"),
    ({"orders": [{**ORDER, "time": "2026-05-01T12:30:00"}]}, 422, "orders[0].time"),
    ({"orders": [{**ORDER, "time": "yesterday"}]}, 422, "orders[0].time"),
    ({"orders": [{**ORDER, "time": -2.8e16}]}, 422, "orders[0].time"),  # beyond datetime's years
    ({"orders": [{**ORDER, "time": 100.0}]}, 422, "orders[0].time"),
    ({"orders": [{**ORDER, "items": []}]}, 422, "orders[0].items"),
    ({"orders": [{**ORDER, "items": ["a", 3]}]}, 422, "orders[0].items[1]"),
    ({"orders": [{**ORDER, "items": ["a", "  "]}]}, 422, "orders[0].items[1]"),
    ({"orders": [ORDER, {**ORDER, "surprise": True}]}, 422, "orders[1].surprise"),
    ({"orders": [{**ORDER, "request_ids": "req-1"}]}, 422, "orders[0].request_ids"),
])
def test_a_bad_order_is_refused_naming_the_field_and_nothing_is_stored(
        client: TestClient, store_url: str, body: object, status: int,
        field: str | None) -> None:
    if isinstance(body, bytes):
        answer = client.post("/v1/orders", content=body,
                             headers={"content-type": "application/json"})
    else:
        answer = client.post("/v1/orders", json=body)
    assert answer.status_code == status, answer.text
    document = answer.json()
    assert document["field"] == field, document
    assert document["request_id"] and document["message"]
    assert _stored(store_url) == []


def test_a_store_that_is_down_answers_503_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'm.db'}"  # its parent is a file: the store cannot open
    with _client(tmp_path, url, capture=False) as c:
        answer = c.post("/v1/orders", json={"orders": [ORDER]})
        assert answer.status_code == 503
        document = answer.json()
        assert document["error"] == "store_unavailable"
        assert str(blocker) in document["message"] and "\n" not in document["message"]
        # serving goes on
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200


def test_the_endpoint_is_in_the_openapi_document(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/orders"]["post"]
    assert {"200", "400", "422", "503"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    body = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert body["properties"]["orders"]["items"]["required"] == ["order_id", "time", "items"]
