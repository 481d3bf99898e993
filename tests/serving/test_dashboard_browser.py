"""The monitoring page in a real headless Chromium, served by a real server, on a network that
reaches nothing but the service: it renders with no console error, every resource comes from
the service, and the figures it shows (summary cards, table cells, the charts' data) are
``/monitor/data``'s. Screenshots at 1280 px and at a phone's 390 px go to the test's tmp dir
(and to ``$BASKETRY_SCREENSHOTS`` when set); the static report is checked the same way.

Needs Debian's Chromium and its driver and selenium, like ``test_docs_browser.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.test_docs_browser import _browser
from tests.serving.test_server import start

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")

D = 86_400
T0 = 1_700_000_000 // D * D
DAYS = 6
QUERY = "window=day&since=2023-11-14&until=2023-11-20"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from basketry.monitoring.store import MonitorStore
    from tests.monitoring.dashboard_seed import fill_store, write_measured_model

    version = write_measured_model(tmp_path / "model", "v1", 0.42)
    url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    store = MonitorStore(url)
    store.migrate()
    fill_store(store, T0, DAYS, version)
    store.close()
    monkeypatch.setenv("BASKETRY_MONITOR_DB", url)
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    yield from start(tmp_path, tmp_path / "model", access_log=False)


def _chrome(tmp_path: Path) -> Any:
    chromium, driver_path = _browser()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (test extra) missing")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                # a closed network: every host name but the loopback address fails to resolve
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(driver_path))
    browser.set_page_load_timeout(60)
    return browser


def _open(browser: Any, url: str, width: int) -> float:
    """Load ``url`` at ``width`` CSS pixels (a phone's viewport below 500) and wait until every
    chart is drawn; the seconds it took."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500})
    started = time.perf_counter()
    browser.get(url)
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element("tag name", "body").get_attribute("data-ready") != "false")
    seconds = time.perf_counter() - started
    assert browser.find_element("tag name", "body").get_attribute("data-ready") == "true"
    return seconds


def _screenshot(browser: Any, path: Path, width: int) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": width < 500})
    time.sleep(0.5)  # the charts follow the new size (plotly's responsive resize)
    assert browser.save_screenshot(str(path))
    keep = os.environ.get("BASKETRY_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _errors(browser: Any) -> list[dict[str, Any]]:
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def _shown(browser: Any) -> dict[str, Any]:
    """What the page shows: the cards' values, the tables' data and the charts' traces."""
    return browser.execute_script("""
        const num = (el) => el.dataset.value === "" ? null : JSON.parse(el.dataset.value);
        const traces = (id) => {
          const el = document.getElementById(id);
          return el && el.data ? el.data.map(t => ({name: t.name, x: t.x, y: t.y})) : null;
        };
        const cards = {};
        document.querySelectorAll("[data-figure]").forEach(
          el => cards[el.dataset.figure] = num(el));
        const drift = {};
        document.querySelectorAll("[data-detector].chart").forEach(
          el => drift[el.dataset.detector] = traces(el.id));
        return {
          cards: cards,
          traffic: traces("chart-traffic"), latency: traces("chart-latency"),
          hit_rate: traces("chart-hit-rate"), drift: drift,
          alerts: [...document.querySelectorAll("tr[data-alert]")].map(r => +r.dataset.alert),
          items: [...document.querySelectorAll(".items-table tbody tr")].map(r => ({
            item: r.dataset.item,
            cells: [...r.querySelectorAll("td[data-value]")].map(num)})),
          rules: [...document.querySelectorAll(".rules-table tbody tr")].map(
            r => [...r.querySelectorAll("td[data-value]")].map(num)),
          versions: [...document.querySelectorAll(".versions-table tbody tr")].map(r => ({
            version: r.dataset.version,
            cells: [...r.querySelectorAll("td[data-value]")].map(num)})),
          overflow: document.documentElement.scrollWidth - window.innerWidth,
        };""")


def _assert_shows(shown: dict[str, Any], data: dict[str, Any]) -> None:
    s = data["summary"]
    assert shown["cards"] == {"requests": s["requests"], "latency_p95_ms": s["latency_p95_ms"],
                              "hit_rate": s["hit_rate"]["value"],
                              "open_alerts": s["open_alerts"], "drifted": len(s["drifted"])}
    windows = data["traffic"]["windows"]
    starts = [w["start"] for w in windows]
    for trace in shown["traffic"]:
        assert trace["y"] == [w["endpoints"].get(trace["name"], 0) for w in windows]
        assert [x[:10] for x in trace["x"]] == [x[:10] for x in starts]
    assert {t["name"] for t in shown["traffic"]} == set(data["traffic"]["total"]["endpoints"])
    for trace in shown["latency"]:
        assert trace["y"] == [w["latency_ms"][trace["name"]] for w in windows]
    perf = data["performance"]
    (version,) = perf["versions"]
    online = [w["replay"]["hit_rate@10"]["value"] for w in perf["windows"] if w["replay"]]
    traces = {t["name"]: t for t in shown["hit_rate"]}
    assert traces[f"{version[:12]} online"]["y"] == online
    offline = perf["versions"][version]["offline"]["hit_rate@10"]
    assert traces[f"{version[:12]} offline"]["y"] == [offline, offline]
    for name, detector in data["drift"]["detectors"].items():
        values = [p["value"] for p in detector["series"][version]]
        thresholds = [p["threshold"] for p in detector["series"][version]]
        drawn = shown["drift"][name]
        assert drawn[0]["y"] == values
        if any(t is not None for t in thresholds):
            assert drawn[1]["y"] == thresholds
    alerts = data["alerts"]
    assert shown["alerts"] == [a["id"] for a in alerts["open"] + alerts["resolved"]]
    rows = [r for g in data["drift"]["top_items"] for r in g["rows"]]
    assert shown["items"] == [{"item": r["item"], "cells": [
        r["reference_share"], r["window_share"], r["contribution"]]} for r in rows]
    rules = [r for g in data["drift"]["broken_rules"] for r in g["rows"]]
    assert shown["rules"] == [[r["reference_confidence"], r["window_confidence"],
                               r["q_value"]] for r in rules]
    assert shown["versions"] == [{"version": version, "cells": [online[-1], offline]}]


def test_the_page_renders_offline_and_shows_the_jsons_figures(served: Any,
                                                             tmp_path: Path) -> None:
    data = httpx.get(f"{served.url}/monitor/data?{QUERY}", timeout=60).json()
    assert data["traffic"]["total"]["requests"] > 0 and data["drift"]["detectors"]
    browser = _chrome(tmp_path)
    try:
        for width in (1280, 390):
            seconds = _open(browser, f"{served.url}/monitor?{QUERY}", width)
            print(f"page ready at {width} px in {seconds:.2f} s")  # not asserted: shared cores
            assert _errors(browser) == []
            shown = _shown(browser)
            _assert_shows(shown, data)
            # each version's first answer in the period is marked on the hit-rate chart
            marks = browser.execute_script(
                "const l = document.getElementById('chart-hit-rate').layout;"
                "return (l.shapes || []).map(s => s.x0);")
            firsts = [i["first_seen"] for i in data["performance"]["versions"].values()
                      if data["performance"]["since"] <= i["first_seen"]
                      <= data["performance"]["until"]]
            assert firsts and len(marks) == len(firsts)
            assert shown["overflow"] <= 0  # nothing wider than the screen: tables scroll
            loaded = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)")
            assert loaded and all(u.startswith(served.url) for u in loaded), loaded
            assert any("/monitor/assets/plotly.min.js" in u for u in loaded)
            _screenshot(browser, tmp_path / f"monitor-{width}px.png", width)
    finally:
        browser.quit()


def test_the_static_report_renders_from_its_file_alone(served: Any, tmp_path: Path) -> None:
    from basketry.monitoring.report_html import render_report

    data = httpx.get(f"{served.url}/monitor/data?{QUERY}", timeout=60).json()
    report = tmp_path / "report.html"
    report.write_text(render_report(data), encoding="utf-8")
    browser = _chrome(tmp_path)
    try:
        for width in (1280, 390):
            _open(browser, report.as_uri(), width)
            assert _errors(browser) == []
            _assert_shows(_shown(browser), data)
            loaded = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)")
            assert loaded == []  # everything is in the file
            _screenshot(browser, tmp_path / f"report-{width}px.png", width)
    finally:
        browser.quit()


def test_the_asset_is_cached_and_the_data_refuses_bad_parameters(served: Any) -> None:
    page = httpx.get(f"{served.url}/monitor?{QUERY}", timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    script = page.text.split('src="', 1)[1].split('"', 1)[0]
    asset = httpx.get(f"{served.url}{script.replace('&amp;', '&')}", timeout=60)
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert asset.headers["content-type"].startswith("text/javascript")
    assert asset.headers["content-encoding"] == "gzip"  # httpx asks for it, and decodes it
    plain = httpx.get(f"{served.url}{script.replace('&amp;', '&')}", timeout=60,
                      headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert asset.content == plain.content and len(plain.content) > 1_000_000
    assert int(asset.headers["content-length"]) < len(plain.content) / 2
    for query, field in (("window=fortnight", "window"), ("since=yesterday", "since"),
                         ("windw=day", "windw"), ("since=2026-02-01&until=2026-01-01", "since")):
        answer = httpx.get(f"{served.url}/monitor/data?{query}", timeout=60)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
        html = httpx.get(f"{served.url}/monitor?{query}", timeout=60)
        assert html.status_code == 422 and "<h1>basketry monitoring</h1>" in html.text
    spec = httpx.get(f"{served.url}/openapi.json", timeout=60).json()
    assert "/monitor/data" in spec["paths"] and "/monitor" not in spec["paths"]
    assert json.loads(httpx.get(f"{served.url}/monitor/data?{QUERY}", timeout=60).text)[
        "window"] == "day"
