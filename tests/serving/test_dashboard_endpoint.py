"""``GET /monitor`` and ``/monitor/data`` through the application: the document is
``dashboard_data``'s on the worker's store, a store that is down is 503 (JSON, and a page
saying so) while serving goes on, and without plotly the page says what to install."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")

from basketry.monitoring import MonitorSettings
from basketry.monitoring.catalog import ModelCatalog
from basketry.monitoring.dashboard import dashboard_data
from basketry.monitoring.store import MonitorStore
from basketry.monitoring.windows import Window
from basketry.serving import Settings, create_app
from basketry.serving import dashboard as served_dashboard
from basketry.serving.capture import Capture
from tests.monitoring.dashboard_seed import fill_store, write_measured_model

D = 86_400
T0 = 1_700_000_000 // D * D
QUERY = {"window": "day", "since": "2023-11-14", "until": "2023-11-17"}


def _client(tmp_path: Path, url: str) -> TestClient:
    cap = Capture(MonitorSettings(db=url, capture=False, connect_timeout=2), explicit=True)
    return TestClient(app=create_app(Settings(model=str(tmp_path / "model")), capture=cap),
                      raise_server_exceptions=False)


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    version = write_measured_model(tmp_path / "model", "v1", 0.42)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = MonitorStore(url)
    store.migrate()
    fill_store(store, T0, 3, version)
    store.close()
    return url


def test_the_data_is_the_dashboards_document(tmp_path: Path, filled: str) -> None:
    with _client(tmp_path, filled) as c:
        answer = c.get("/monitor/data", params=QUERY)
        page = c.get("/monitor", params=QUERY)
    assert answer.status_code == 200, answer.text
    served = answer.json()
    store = MonitorStore(filled)
    expected = dashboard_data(store, ModelCatalog([tmp_path / "model"]),
                              window=Window.parse("day"), since=T0, until=T0 + 3 * D)
    store.close()
    for part in ("drift", "alerts", "summary", "window", "since", "until"):
        assert served[part] == expected[part], part
    assert served["traffic"]["windows"] == expected["traffic"]["windows"]
    assert served["traffic"]["windows_computed"] == 3  # then stored: reused by the second
    assert expected["traffic"]["windows_reused"] == 3
    assert served["performance"]["windows"] == expected["performance"]["windows"]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'data-value="{served["summary"]["requests"]}"' in page.text


def test_a_store_that_is_down_is_503_and_serving_goes_on(tmp_path: Path) -> None:
    write_measured_model(tmp_path / "model", "v1", 0.42)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with _client(tmp_path, f"sqlite:///{blocker / 'm.db'}") as c:
        answer = c.get("/monitor/data")
        assert answer.status_code == 503
        assert answer.json()["error"] == "store_unavailable"
        assert str(blocker) in answer.json()["message"]
        page = c.get("/monitor")
        assert page.status_code == 503 and str(blocker) in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert c.post("/v1/recommendations", json={"basket": ["a"]}).status_code == 200


def test_without_plotly_the_page_says_what_to_install(tmp_path: Path, filled: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from basketry.monitoring import report_html

    monkeypatch.setattr(report_html, "plotly_js", lambda: None)
    monkeypatch.setattr(served_dashboard, "plotly_js", lambda: None)
    served_dashboard._plotly_url.cache_clear()
    try:
        with _client(tmp_path, filled) as c:
            page = c.get("/monitor", params=QUERY)
            asset = c.get("/monitor/assets/plotly.min.js")
    finally:
        served_dashboard._plotly_url.cache_clear()
    assert page.status_code == 200
    assert "basketry[monitor]" in page.text and "plotly.min.js" not in page.text
    assert "Apples" in page.text  # the tables are there
    assert asset.status_code == 404 and "basketry[monitor]" in asset.json()["message"]
