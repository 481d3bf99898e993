"""The monitoring page's document on a real store (SQLite, and PostgreSQL when configured):
traffic counted and latency percentiles read from SQL buckets, closed windows stored once,
the online performance as its own report, drift results and alerts as stored; and the HTML
renderer: offline, escaped, empty states."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from basketry.monitoring import RecommendationEvent, schema
from basketry.monitoring import report_html as R
from basketry.monitoring.catalog import ModelCatalog
from basketry.monitoring.dashboard import dashboard_data
from basketry.monitoring.performance import performance
from basketry.monitoring.traffic import GRACE_US, bucket_bounds, bucket_of
from basketry.monitoring.windows import Window
from tests.monitoring import test_drift_run as drift_run
from tests.monitoring.dashboard_seed import seed, write_measured_model

D = 86_400
US = 1_000_000
T0 = 1_700_000_000 // D * D  # a midnight, UTC
ENDPOINTS = ("single", "batch", "associations")
#: a model mined on generated baskets and the rest of the stream (the drift run's fixture)
world = drift_run.world
PER_DAY, _record, _shifted = drift_run.PER_DAY, drift_run._record, drift_run._shifted


@pytest.fixture
def version(tmp_path: Path) -> str:
    return write_measured_model(tmp_path / "model", "v1", 0.42)


@pytest.fixture
def models(tmp_path: Path, version: str) -> ModelCatalog:
    return ModelCatalog([tmp_path / "model"])


def _events(days: int, per_day: int, version: str, seed_: int = 0) -> list[RecommendationEvent]:
    rng = random.Random(seed_)
    out = []
    for day in range(days):
        for i in range(per_day):
            # latencies over five decades, a few of them on bucket edges
            latency = rng.choice([rng.lognormvariate(0, 1.5), 1.0, 10.0, 0.5, 250.0])
            out.append(RecommendationEvent(
                T0 + day * D + i * (D // per_day), f"r{day}-{i}", version,
                ENDPOINTS[i % 3], ("a",), ("b", "c"), 2, 0, latency))
    return out


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def test_traffic_counts_and_latency_percentiles_per_window(store, models, version):
    events = _events(3, 300, version)
    store.add_events(events)
    data = dashboard_data(store, models, window=Window.parse("day"), since=T0,
                          until=T0 + 3 * D, now=T0 + 4 * D)
    traffic = data["traffic"]
    assert [w["start"][:10] for w in traffic["windows"]] == ["2023-11-14", "2023-11-15",
                                                             "2023-11-16"]
    for day, w in enumerate(traffic["windows"]):
        mine = [e for e in events if T0 + day * D <= e.time < T0 + (day + 1) * D]
        assert w["requests"] == len(mine) == 300
        assert w["endpoints"] == {e: sum(x.endpoint == e for x in mine) for e in
                                  sorted(ENDPOINTS)}
        assert w["versions"] == {version: 300}
        latencies = [x.latency_ms for x in mine]
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            true = _nearest_rank(latencies, q)
            lo, hi = bucket_bounds([bucket_of(true)])
            # the figure is in the true value's bucket (two significant digits)
            assert lo[0] <= w["latency_ms"][name] <= hi[0], (name, true, w["latency_ms"])
        single = [x.latency_ms for x in mine if x.endpoint == "single"]
        p95 = w["latency_ms_by_endpoint"]["single"]["p95"]
        lo, hi = bucket_bounds([bucket_of(_nearest_rank(single, 0.95))])
        assert lo[0] <= p95 <= hi[0]
    assert traffic["total"]["requests"] == 900
    assert data["summary"]["requests"] == 900
    assert data["summary"]["latency_p95_ms"] == traffic["total"]["latency_ms"]["p95"]


def test_the_sql_buckets_are_the_python_ones(store, models, version):
    rng = random.Random(3)
    edges = [0.0, 0.01, 0.999, 1.0, 9.99, 10.0, 99.9, 100.0, 1000.0, 10_000.0, 2e6, 1e-9]
    latencies = edges + [rng.lognormvariate(1, 2.5) for _ in range(500)]
    store.add_events([RecommendationEvent(T0 + i, f"r{i}", version, "single", ("a",), ("b",),
                                          1, 0, x) for i, x in enumerate(latencies)])
    dashboard_data(store, models, window=Window.parse("day"), since=T0, until=T0 + D,
                   now=T0 + 2 * D)
    with store.engine.connect() as c:
        metrics = c.execute(sa.select(schema.windows.c.metrics).where(
            schema.windows.c.kind == "traffic")).scalar_one()
    stored = {int(code): n for code, n in metrics["latency"]["single"]}
    expected: dict[int, int] = {}
    for x in latencies:
        expected[bucket_of(x)] = expected.get(bucket_of(x), 0) + 1
    assert stored == expected
    for x in latencies:  # and every latency is within its bucket's bounds
        lo, hi = bucket_bounds([bucket_of(x)])
        assert lo[0] <= min(x, 1e6) < hi[0] or x >= 1e6


def test_closed_traffic_windows_are_stored_once_and_reused(store, models, version):
    store.add_events(_events(3, 30, version))
    now = T0 + 2 * D + 3600  # inside the third day: two closed windows, one open
    args = {"window": Window.parse("day"), "since": T0, "until": T0 + 3 * D, "now": now}
    first = dashboard_data(store, models, **args)["traffic"]
    assert (first["windows_reused"], first["windows_computed"]) == (0, 3)
    assert [w["closed"] for w in first["windows"]] == [True, True, False]
    with store.engine.connect() as c:
        starts = c.execute(sa.select(schema.windows.c.start_us).where(
            schema.windows.c.kind == "traffic").order_by(schema.windows.c.start_us)).scalars()
        assert list(starts) == [T0 * US, (T0 + D) * US]  # never the open window
    # the stored figures are what later pages show: events deleted since do not change them
    with store.engine.begin() as c:
        c.execute(sa.delete(schema.recommendation_events))
    again = dashboard_data(store, models, **args)["traffic"]
    assert (again["windows_reused"], again["windows_computed"]) == (2, 1)
    assert [w["requests"] for w in again["windows"]] == [30, 30, 0]
    assert again["windows"][:2] == first["windows"][:2]


def test_the_grace_period_keeps_a_just_ended_window_open(store, models, version):
    store.add_events(_events(1, 10, version))
    data = dashboard_data(store, models, window=Window.parse("day"), since=T0, until=T0 + D,
                          now=T0 + D + GRACE_US / US / 2)
    assert data["traffic"]["windows"][0]["closed"] is False
    assert data["traffic"]["windows_computed"] == 1
    with store.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(schema.windows).where(
            schema.windows.c.kind == "traffic")).scalar() == 0


def test_the_performance_is_the_online_report_with_the_offline_reference(store, models,
                                                                         version):
    store.add_events(_events(2, 20, version))
    store.add_orders([{"order_id": f"o{i}", "time": T0 + 100 + i * 3000,
                       "items": ["a", "b", "c", "d"][: 2 + i % 3]} for i in range(50)])
    args = {"window": Window.parse("day"), "since": T0, "until": T0 + 2 * D, "now": T0 + 3 * D}
    data = dashboard_data(store, models, **args)
    expected = performance(store, models, **args).to_json()
    assert data["performance"]["windows"] == expected["windows"]
    assert data["performance"]["versions"][version]["offline"]["hit_rate@10"] == 0.42
    hr = [w for w in expected["windows"] if w["replay"]][-1]["replay"]["hit_rate@10"]["value"]
    assert data["summary"]["hit_rate"]["value"] == hr


def test_drift_results_top_items_broken_rules_as_stored(store, models, version):
    seed(store, T0, 6, version)
    # an older computation of the last window, superseded by the seeded one
    with store.engine.begin() as c:
        c.execute(schema.drift_results.insert(), [{
            "model_version": version, "start_us": (T0 + 5 * D) * US,
            "end_us": (T0 + 6 * D) * US, "feature": "items_orders",
            "statistic": "jensen_shannon", "value": 9.0, "threshold": 0.05, "drifted": True,
            "details": {"top_contributors": [{"item": "old"}]}, "computed_us": 1}])
    data = dashboard_data(store, models, window=Window.parse("day"), since=T0 + D,
                          until=T0 + 6 * D, now=T0 + 7 * D)
    drift = data["drift"]
    assert list(drift["detectors"]) == ["items_orders", "basket_size", "unknown_share",
                                        "rule_confidence", "hit_rate_change"]
    assert drift["detectors"]["items_orders"]["kind"] == "data"
    assert drift["detectors"]["rule_confidence"]["kind"] == "concept"
    series = drift["detectors"]["items_orders"]["series"][version]
    assert [p["start"][:10] for p in series] == ["2023-11-15", "2023-11-16", "2023-11-17",
                                                  "2023-11-18", "2023-11-19"]  # the period
    assert [p["value"] for p in series] == pytest.approx(
        [0.02 + 0.003 * d + (0.08 if d >= 4 else 0) for d in range(1, 6)])
    assert series[-1]["drifted"] is True and series[0]["drifted"] is False
    assert series[-1]["threshold"] == pytest.approx(0.05 + 0.001 * (5 % 3))
    (items,) = drift["top_items"]
    assert items["detector"] == "items_orders" and items["start"][:10] == "2023-11-19"
    assert [r["item"] for r in items["rows"]] == ["a", "b", "c"]
    assert items["rows"][1]["label"] == "Bread <fresh>"
    (rules,) = drift["broken_rules"]
    assert rules["rows"][0]["antecedent"] == ["a", "b"]
    assert rules["rows"][0]["window_confidence"] == 0.21
    assert data["summary"]["drifted"] == ["items_orders", "rule_confidence"]
    assert data["summary"]["detectors_checked"] == 5


def test_alerts_open_first_then_the_periods_resolved(store, models, version):
    seed(store, T0, 6, version)
    with store.engine.begin() as c:  # resolved long before the period: not shown
        c.execute(schema.alerts.insert(), [{
            "time_us": (T0 - 30 * D) * US, "kind": "old", "severity": "info",
            "model_version": None, "message": "old", "details": None,
            "resolved_us": (T0 - 29 * D) * US}])
    data = dashboard_data(store, models, window=Window.parse("day"), since=T0,
                          until=T0 + 6 * D, now=T0 + 7 * D)
    alerts = data["alerts"]
    assert alerts["open_count"] == 2
    assert [a["kind"] for a in alerts["open"]] == ["concept_drift", "data_drift"]
    assert [a["kind"] for a in alerts["resolved"]] == ["latency"]
    assert alerts["resolved"][0]["resolved"] == "2023-11-16T00:00:00Z"
    assert data["summary"]["open_alerts"] == 2


def test_an_empty_store_renders_its_empty_states(store, models):
    data = dashboard_data(store, models, window=Window.parse("day"), now=T0)
    assert data["traffic"]["total"]["requests"] == 0
    assert data["drift"] == {"detectors": {}, "top_items": [], "broken_rules": []}
    page = R.render_report(data)
    for text in R.EMPTY.values():
        assert R._e(text) in page
    assert "run basketry monitor drift" in page


# -- the HTML ------------------------------------------------------------------------------

class _Tags(HTMLParser):
    """Every tag's attributes, and the scripts' texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _filled(store, models, version) -> dict:
    store.add_events(_events(3, 30, version))
    seed(store, T0, 3, version)
    return dashboard_data(store, models, window=Window.parse("day"), since=T0,
                          until=T0 + 3 * D, now=T0 + 4 * D)


def _resource_urls(page: str) -> list[str]:
    parser = _Tags()
    parser.feed(page)
    urls = [v for _, attrs in parser.tags for k, v in attrs.items()
            if k in ("src", "href", "action", "srcset", "poster", "data") and v]
    css = "".join(re.findall(r"<style>(.*?)</style>", page, re.S))
    urls += re.findall(r"url\(([^)]*)\)", css) + re.findall(r"@import\s+([^;]+)", css)
    return urls


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_static_report_is_one_offline_file(store, models, version):
    page = R.render_report(_filled(store, models, version))
    parser = _Tags()
    parser.feed(page)
    assert not [u for u in _resource_urls(page) if re.match(r"\s*(https?:)?//", u)]
    assert not any(attrs.get("src") for tag, attrs in parser.tags if tag == "script")
    assert R.plotly_js() is not None and any("Plotly" in s and len(s) > 1_000_000
                                             for s in parser.scripts)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_served_page_loads_plotly_from_the_service(store, models, version):
    page = R.render_report(_filled(store, models, version), inline_assets=False, live=True)
    urls = _resource_urls(page)
    assert "/monitor/assets/plotly.min.js" in urls
    assert all(u.startswith(("/monitor", "data:")) for u in urls), urls
    assert len(page) < 500_000  # plotly.js is not in it


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_names_from_the_store_cannot_break_out_of_the_page(store, models, version):
    data = _filled(store, models, version)
    evil = "</script><script>window.owned = 1</script><img src=x onerror=alert(1)>"
    data["drift"]["top_items"][0]["rows"][0]["label"] = evil
    data["alerts"]["open"][0]["message"] = evil
    page = R.render_report(data, inline_assets=False)
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert tags.count("img") == 0 and tags.count("script") == 3  # data, plotly.js, ours
    (embedded,) = [s for s in parser.scripts if s.startswith("{")]
    assert not any("window.owned" in s for s in parser.scripts if s is not embedded)
    assert json.loads(embedded)["alerts"]["open"][0]["message"] == evil


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_without_plotly_the_page_says_what_to_install(store, models, version, monkeypatch):
    monkeypatch.setattr(R, "plotly_js", lambda: None)
    page = R.render_report(_filled(store, models, version))
    assert "pip install &#x27;basketry[monitor]&#x27;" in page or \
        "pip install 'basketry[monitor]'" in page
    assert "Plotly.newPlot" in page and "BASKETRY_NO_PLOTLY" in page
    assert len(page) < 500_000


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_figure_that_is_not_a_number_is_shown_as_none(store, models, version):
    data = _filled(store, models, version)
    data["drift"]["detectors"]["items_orders"]["series"][version][0]["value"] = float("nan")
    data["summary"]["latency_p95_ms"] = float("inf")
    parser = _Tags()
    parser.feed(R.render_report(data, inline_assets=False))
    (embedded,) = [s for s in parser.scripts if s.startswith("{")]
    document = json.loads(embedded)
    assert document["drift"]["detectors"]["items_orders"]["series"][version][0]["value"] is None
    assert document["summary"]["latency_p95_ms"] is None


# -- with what the drift run and the alerts really store ----------------------------------

def test_the_page_shows_what_the_drift_run_and_the_alerts_stored(store, world):
    from basketry.model import load_model
    from basketry.monitoring.alert_settings import AlertSettings
    from basketry.monitoring.alerts import Alerts
    from basketry.monitoring.drift import drift
    from basketry.monitoring.watch import run_cycle

    path, rest = world
    model = load_model(path)
    days = [rest[i * PER_DAY:(i + 1) * PER_DAY] for i in range(3)]
    days[2] = _shifted(days[2], list(model.items), seed=2)
    _record(store, model, days)
    catalog = ModelCatalog([path])
    day, now = Window.parse("day"), T0 + 3 * D + 600
    alerts = Alerts.from_settings(store, AlertSettings())
    try:
        run_cycle(store, catalog, alerts, window=day, now=now)
    finally:
        alerts.close()
    # the drift results of the period, as stored now
    report = drift(store, catalog, window=day, since=T0, until=T0 + 3 * D, now=now)
    data = dashboard_data(store, catalog, window=day, since=T0, until=T0 + 3 * D, now=now)
    stored = {(r["feature"], r["model_version"], r["start_us"]): r for r in report.results}
    detectors = data["drift"]["detectors"]
    assert set(detectors) == {r["feature"] for r in report.results}  # and no marker rows
    assert {"items_orders", "rule_confidence", "hit_rate_change"} <= set(detectors)
    for name, d in detectors.items():
        for version, series in d["series"].items():
            for p in series:
                start = round(datetime.fromisoformat(p["start"]).timestamp()) * US
                r = stored[(name, version, start)]
                assert (p["value"], p["threshold"], p["drifted"]) == (
                    pytest.approx(r["value"]), r["threshold"], r["drifted"])
    last = stored[("items_orders", model.version, (T0 + 2 * D) * US)]
    items = next(g for g in data["drift"]["top_items"] if g["detector"] == "items_orders")
    assert items["start"][:10] == "2023-11-16" and items["drifted"] is True
    assert items["rows"] == last["details"]["top_contributors"][:25]
    rules = next(g for g in data["drift"]["broken_rules"] if g["detector"] == "rule_confidence")
    assert rules["rows"] == stored[("rule_confidence", model.version, (T0 + 2 * D) * US)][
        "details"]["broken_rules"][:25]
    assert {"items_orders", "rule_confidence"} <= set(data["summary"]["drifted"])
    assert {a["kind"] for a in data["alerts"]["open"]} >= {"items_orders", "rule_confidence"}
    page = R.render_report(data, inline_assets=False)
    assert R._e(items["rows"][0]["item"]) in page


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_workers_storing_the_same_traffic_window_both_answer(store, models, version):
    """PostgreSQL: another worker's uncommitted row for the same window makes this one's
    insert wait, then fail on the unique key once it commits: the page is still made."""
    import threading

    store.add_events(_events(1, 20, version))
    t = schema.windows
    other = store.engine.connect()
    other.begin()
    other.execute(t.insert(), [{"kind": "traffic", "model_version": "", "window": "day",
                                "start_us": T0 * US, "end_us": (T0 + D) * US, "n": 20,
                                "metrics": {}, "computed_us": 1}])
    out: dict = {}

    def page() -> None:
        try:
            out["data"] = dashboard_data(store, models, window=Window.parse("day"), since=T0,
                                         until=T0 + D, now=T0 + 2 * D)
        except Exception as exc:  # reported below
            out["error"] = exc

    worker = threading.Thread(target=page)
    worker.start()
    with store.engine.connect() as c:  # until the page's insert waits for the other's lock
        while worker.is_alive() and not c.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO windows%'")).scalar():
            c.rollback()
    other.commit()
    other.close()
    worker.join()
    assert "error" not in out, out.get("error")
    assert out["data"]["traffic"]["windows"][0]["requests"] == 20
