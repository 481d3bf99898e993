"""``GET /v1/monitoring/performance``: the same report as ``basketry monitor performance
--output json``, from a real store, with the served model replaying its orders; bad
parameters are 422 naming the field, a store that is down is 503 and serving goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import TestClient

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")

from basketry.monitoring import MonitorSettings, RecommendationEvent
from basketry.monitoring.store import MonitorStore
from basketry.serving import Settings, create_app
from basketry.serving.capture import Capture
from tests.serving.conftest import write_version

D = 86_400
T0 = 1_700_000_000 // D * D


def _client(tmp_path: Path, url: str) -> TestClient:
    cap = Capture(MonitorSettings(db=url, capture=False, connect_timeout=2), explicit=True)
    return TestClient(app=create_app(Settings(model=str(tmp_path / "model")), capture=cap),
                      raise_server_exceptions=False)


@pytest.fixture
def filled(tmp_path: Path) -> str:
    version = write_version(tmp_path / "model", "v1")
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = MonitorStore(url)
    store.migrate()
    store.add_events([RecommendationEvent(T0 + 60 * i, f"r{i}", version, "single", ("a",),
                                          ("b", "c", "d"), 3, 0, 1.0) for i in range(20)])
    store.add_orders([{"order_id": f"o{i}", "time": T0 + D * (i % 3) + 120 + i,
                       "items": ["a", "b", "e"][: 2 + i % 2] + (["d"] if i % 4 == 0 else []),
                       "request_ids": [f"r{i}"]} for i in range(20)])
    store.close()
    return url


def test_the_endpoint_answers_what_the_command_prints(tmp_path: Path, filled: str) -> None:
    query = {"since": "2023-11-14", "until": "2023-11-17T00:00:00Z", "window": "day"}
    with _client(tmp_path, filled) as c:
        answer = c.get("/v1/monitoring/performance", params=query)
    assert answer.status_code == 200, answer.text
    served = answer.json()
    env = {**os.environ, "BASKETRY_HOME": str(tmp_path / "home")}
    printed = subprocess.run(
        [str(Path(sys.executable).with_name("basketry")), "monitor", "performance", "--db", filled,
         "--since", query["since"], "--until", query["until"], "--model",
         str(tmp_path / "model"), "--output", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=True)
    cli = json.loads(printed.stdout)
    assert [w["start"] for w in served["windows"]] == ["2023-11-14T00:00:00Z",
                                                      "2023-11-15T00:00:00Z",
                                                      "2023-11-16T00:00:00Z"]
    assert served["windows"] == cli["windows"]
    assert all(w["replay"] is not None and w["attributed"] is not None
               for w in served["windows"])
    assert sum(w["orders"] for w in served["windows"]) == 20
    assert served["versions"] == cli["versions"]


@pytest.mark.parametrize(("query", "field"), [
    ({"window": "fortnight"}, "window"),
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-01"}, "until"),
    ({"since": "2026-02-01", "until": "2026-01-01"}, "since"),
    ({"window": "hour", "since": "2000-01-01"}, "window"),  # hundreds of thousands of windows
    ({"windw": "day"}, "windw"),
    ({"model_version": "nope"}, "model_version"),
])
def test_bad_parameters_are_422_naming_the_field(tmp_path: Path, filled: str, query: dict,
                                                 field: str) -> None:
    with _client(tmp_path, filled) as c:
        answer = c.get("/v1/monitoring/performance", params=query)
    assert answer.status_code == 422, answer.text
    document = answer.json()
    assert document["field"] == field and "\n" not in document["message"]


def test_a_store_that_is_down_is_503_and_serving_goes_on(tmp_path: Path) -> None:
    write_version(tmp_path / "model", "v1")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with _client(tmp_path, f"sqlite:///{blocker / 'm.db'}") as c:
        answer = c.get("/v1/monitoring/performance")
        assert answer.status_code == 503
        assert answer.json()["error"] == "store_unavailable"
        assert str(blocker) in answer.json()["message"]
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200


def test_a_store_edited_by_hand_is_503_naming_it_and_serving_goes_on(tmp_path: Path,
                                                                     filled: str) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "m.db") as connection:
        connection.execute("UPDATE recommendation_events SET returned = '[1, 2]' "
                           "WHERE request_id = 'r3'")
    with _client(tmp_path, filled) as c:
        answer = c.get("/v1/monitoring/performance", params={
            "since": "2023-11-14", "until": "2023-11-17"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "store_damaged"
        assert "edited by hand" in answer.json()["message"]
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200


def test_the_endpoint_is_in_the_openapi_document(tmp_path: Path, filled: str) -> None:
    with _client(tmp_path, filled) as c:
        spec = c.get("/openapi.json").json()
    get = spec["paths"]["/v1/monitoring/performance"]["get"]
    assert {"200", "422", "503"} <= set(get["responses"])
    assert {p["name"] for p in get["parameters"]} >= {"window", "since", "until",
                                                     "model_version"}
