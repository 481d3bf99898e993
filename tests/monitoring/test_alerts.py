"""Alerts on real stores (SQLite and PostgreSQL): one alert per condition until it clears,
across processes too; logged, counted, and sent to a real local HTTP receiver."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa

from basketry.monitoring import schema
from basketry.monitoring.alerts import AlertRules, Alerts, PerformanceFigure, performance_figures
from basketry.monitoring.drift_types import DriftResult
from basketry.monitoring.store import MonitorStore
from basketry.monitoring.webhook import Webhook
from tests.monitoring.receiver import Receiver, refused_url

US = 1_000_000
DAY = 86_400 * US
T0 = 1_764_547_200 * US  # 2025-12-01T00:00:00Z


def drift(drifted: bool, *, day: int = 0, detector: str = "items_orders",
          version: str = "v1", n: int = 500, **details) -> DriftResult:
    return DriftResult(detector=detector, model_version=version, start_us=T0 + day * DAY,
                       end_us=T0 + (day + 1) * DAY, statistic="jensen_shannon",
                       value=0.2 if drifted else 0.01, threshold=0.05, drifted=drifted, n=n,
                       details=details)


def perf(ci_high: float, *, offline: float | None = 0.30, queries: int = 1_000, day: int = 0,
         version: str = "v1") -> PerformanceFigure:
    return PerformanceFigure(version, T0 + day * DAY, T0 + (day + 1) * DAY, "hit_rate@10",
                             ci_high - 0.02, ci_high - 0.04, ci_high, offline, queries)


def rows(store: MonitorStore) -> list:
    with store.engine.connect() as c:
        return c.execute(sa.select(schema.alerts).order_by(schema.alerts.c.id)).all()


def alert_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "basketry.monitoring.alerts"]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_a_condition_holding_opens_one_alert_until_it_clears(store, caplog):
    caplog.set_level(logging.INFO, "basketry.monitoring.alerts")
    alerts = Alerts(store)
    contributors = [{"item": "85123A", "label": "WHITE HANGING HEART", "contribution": 0.4},
                    {"item": "22423", "label": None, "contribution": 0.1}]
    [opened] = alerts.evaluate([drift(True, top_contributors=contributors)], now_us=T0 + DAY)
    assert opened.open and opened.kind == "items_orders" and opened.severity == "warning"
    assert opened.model_version == "v1" and opened.time_us == T0 + DAY
    assert "\n" not in opened.message
    assert "jensen_shannon 0.2 above the threshold 0.05" in opened.message
    assert "driven by WHITE HANGING HEART, 22423" in opened.message
    assert opened.details["drift"]["top_contributors"] == contributors
    assert opened.details["window"] == {"start": "2025-12-01T00:00:00Z",
                                        "end": "2025-12-02T00:00:00Z"}
    for day in range(1, 10):  # still drifted: nothing new
        assert alerts.evaluate([drift(True, day=day)], now_us=T0 + (day + 1) * DAY) == []
    assert [a.id for a in alerts.open_alerts()] == [opened.id]
    [resolved] = alerts.evaluate([drift(False, day=10)], now_us=T0 + 11 * DAY)
    assert resolved.id == opened.id and resolved.resolved_us == T0 + 11 * DAY
    assert resolved.details["resolution"]["reason"] == "the condition cleared"
    assert alerts.evaluate([drift(False, day=11)], now_us=T0 + 12 * DAY) == []
    assert alerts.open_alerts() == []
    [row] = rows(store)
    assert (row.condition, row.resolved_us) == ("items_orders|v1", T0 + 11 * DAY)
    lines = alert_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith(f"alert {opened.id} opened (warning, items_orders): ")
    assert lines[1].startswith(f"alert {opened.id} resolved (items_orders, model v1)")


def test_a_condition_back_after_clearing_is_a_new_alert(store):
    alerts = Alerts(store)
    first = alerts.evaluate([drift(True)], now_us=T0)[0]
    alerts.evaluate([drift(False, day=1)], now_us=T0 + DAY)
    second = alerts.evaluate([drift(True, day=2)], now_us=T0 + 2 * DAY)[0]
    assert second.id != first.id
    assert [a.id for a in alerts.history()] == [second.id, first.id]
    assert [a.id for a in alerts.history(since_us=T0 + DAY)] == [second.id]


def test_conditions_are_per_detector_and_version_and_only_evidence_decides(store):
    alerts = Alerts(store, AlertRules(detectors=frozenset({"items_orders", "basket_size"})))
    opened = alerts.evaluate([drift(True), drift(True, version="v2"),
                              drift(True, detector="basket_size"),
                              drift(True, detector="new_top_items")], now_us=T0)
    assert sorted((a.kind, a.model_version) for a in opened) == [
        ("basket_size", "v1"), ("items_orders", "v1"), ("items_orders", "v2")]
    # an empty window, and a condition absent from the results, leave the alerts open
    assert alerts.evaluate([drift(False, day=1, n=0)], now_us=T0 + DAY) == []
    assert len(alerts.open_alerts()) == 3
    # the latest window of a condition decides, whatever the order given
    done = alerts.evaluate([drift(False, day=3), drift(True, day=2)], now_us=T0 + 4 * DAY)
    assert [(a.kind, a.model_version, a.open) for a in done] == [("items_orders", "v1", False)]


def test_with_clear_after_a_figure_hovering_about_its_threshold_keeps_one_alert(store):
    alerts = Alerts(store, AlertRules(clear_after=2))
    pattern = [True, False, True, False, False, True, True, False, False, False]
    changes = [alerts.evaluate([drift(held, day=day)], now_us=T0 + (day + 1) * DAY)
               for day, held in enumerate(pattern)]
    # opened on day 0; days 3-4 are two clear windows in a row: resolved on day 4; opened
    # again on day 5, resolved on day 8
    assert [(day, a.open) for day, c in enumerate(changes) for a in c] == [
        (0, True), (4, False), (5, True), (8, False)]
    assert len(rows(store)) == 2


def test_a_clear_window_counts_once_however_many_times_it_is_evaluated(store):
    workers = [Alerts(store, AlertRules(clear_after=2)) for _ in range(2)]
    workers[0].evaluate([drift(True)], now_us=T0)
    for w in workers:  # two workers see the same clear window
        assert w.evaluate([drift(False, day=1)], now_us=T0 + 2 * DAY) == []
    assert len(workers[1].open_alerts()) == 1
    [resolved] = workers[1].evaluate([drift(False, day=2)], now_us=T0 + 3 * DAY)
    assert not resolved.open


def test_performance_opens_when_the_upper_bound_is_below_the_offline_figure(store, caplog):
    alerts = Alerts(store)
    assert alerts.evaluate([perf(0.29, offline=None)], now_us=T0) == []  # no offline figure
    assert alerts.evaluate([perf(0.10, queries=99)], now_us=T0) == []  # too few queries
    assert alerts.evaluate([perf(0.31)], now_us=T0) == []  # the bound reaches the offline
    [opened] = alerts.evaluate([perf(0.29)], now_us=T0)
    assert (opened.kind, opened.severity) == ("performance", "critical")
    assert "below the offline 0.300 for model v1" in opened.message
    assert opened.details["ci95"] == pytest.approx([0.25, 0.29])
    assert any(r.levelno == logging.ERROR for r in caplog.records)  # critical: an error line
    assert alerts.evaluate([perf(0.20, day=1)], now_us=T0 + DAY) == []
    [resolved] = alerts.evaluate([perf(0.32, day=2)], now_us=T0 + 2 * DAY)
    assert resolved.id == opened.id and not resolved.open


def test_performance_figures_come_from_the_latest_closed_window_of_a_report():
    from basketry.monitoring.performance import Cell, Params, Report
    from basketry.monitoring.windows import Window

    def replay(hits: int, queries: int = 1_000) -> dict:
        return {"orders": queries, "queries": queries, "hidden_unknown_to_model": 0,
                "hits@10": hits, "ndcg_sum@10": hits * 0.5, "ndcg_sq@10": hits * 0.25,
                "recommended_items": 10, "n_items": 100, "fallback_answers": 0,
                "fallback_slots": 0}

    cells = [Cell("v1", T0, T0 + DAY, 1_000, replay(300)),
             Cell("v1", T0 + DAY, T0 + 2 * DAY, 1_000, replay(200)),
             Cell("v1", T0 + 2 * DAY, T0 + 3 * DAY, 10, replay(0, 10)),  # still open
             Cell("v2", T0, T0 + DAY, 1_000, replay(250)),
             Cell("", T0, T0 + DAY, 50, None)]
    versions = {"v1": {"offline": {"hit_rate@10": 0.3}}, "v2": {"offline": None}}
    report = Report(Window.parse("day"), T0, T0 + 3 * DAY, T0 + 2 * DAY + 3_600 * US,
                    Params(ks=(10,)), cells, versions)
    v1, v2 = performance_figures(report)
    assert (v1.model_version, v1.start_us, v1.online, v1.offline, v1.queries) == (
        "v1", T0 + DAY, 0.2, 0.3, 1_000)
    assert v1.ci_low < 0.2 < v1.ci_high < 0.3
    assert (v2.model_version, v2.offline) == ("v2", None)
    assert [a.kind for a in AlertRules().conditions([v1, v2]) if a.holds] == ["performance"]


def test_the_store_refuses_a_second_open_alert_of_one_condition(store):
    Alerts(store).evaluate([drift(True)], now_us=T0)
    row = {"time_us": T0, "kind": "items_orders", "severity": "warning",
           "model_version": "v1", "message": "x", "condition": "items_orders|v1"}
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as c:
        c.execute(schema.alerts.insert().values(row))
    with store.engine.begin() as c:  # a resolved one of the same condition is fine
        c.execute(schema.alerts.insert().values(row | {"resolved_us": T0}))


def test_workers_evaluating_at_once_open_and_resolve_each_alert_once(store_url):
    stores = [MonitorStore(store_url, connect_timeout=10) for _ in range(4)]
    stores[0].migrate()
    workers = [Alerts(s) for s in stores]
    barrier = threading.Barrier(len(workers))
    changes: list[list] = [[] for _ in workers]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for day in range(8):
                barrier.wait(30)
                changes[i].append(workers[i].evaluate(
                    [drift(day % 2 == 0, day=day), drift(day % 2 == 0, day=day, version="v2")],
                    now_us=T0 + (day + 1) * DAY))
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        for day in range(8):  # each round: v1 and v2 opened (or resolved) once among all
            made = sorted((a.model_version, a.open) for c in changes for a in c[day])
            assert made == [("v1", day % 2 == 0), ("v2", day % 2 == 0)]
        assert len(rows(stores[0])) == 8
        assert all(r.resolved_us is not None for r in rows(stores[0]))
    finally:
        for s in stores:
            s.close()


def test_no_storm_one_opened_and_one_resolved_post(store, receiver):
    alerts = Alerts(store, webhook=Webhook(receiver.url))
    try:
        for day in range(10):
            alerts.evaluate([drift(True, day=day)], now_us=T0 + (day + 1) * DAY)
        for day in range(10, 13):
            alerts.evaluate([drift(False, day=day)], now_us=T0 + (day + 1) * DAY)
        assert alerts.webhook.flush(10)
    finally:
        alerts.close()
    opened, resolved = receiver.payloads
    [row] = rows(store)
    assert (opened["event"], resolved["event"]) == ("opened", "resolved")
    assert opened["id"] == f"basketry-alert-{row.id}-opened"
    assert opened["alert"]["id"] == resolved["alert"]["id"] == row.id
    assert opened["alert"]["kind"] == "items_orders"
    assert opened["alert"]["resolved_at"] is None
    assert resolved["alert"]["resolved_at"] == "2025-12-12T00:00:00Z"
    assert opened["text"].startswith(f"[warning] basketry alert {row.id} opened: item "
                                     "frequencies of orders drifted for model v1 (items_orders)")
    assert row.notified_us is not None and row.resolved_notified_us is not None


def test_an_unreachable_webhook_loses_nothing_and_a_resend_delivers(store, receiver, caplog):
    down = Alerts(store, webhook=Webhook(refused_url(), retries=1, backoff=0.01))
    [opened] = down.evaluate([drift(True)], now_us=T0)  # returns at once, alert stored
    assert down.webhook.flush(10)
    down.close()
    assert down.webhook.counts()["failed"] == 1
    assert any("connection refused" in r.getMessage() for r in caplog.records)
    [row] = rows(store)
    assert row.id == opened.id and row.notified_us is None and row.resolved_us is None
    # a restart with a receiver up: the opening is sent again, once
    up = Alerts(store, webhook=Webhook(receiver.url))
    try:
        assert up.resend(now_us=T0 + 3_600 * US) == 1
        assert up.webhook.flush(10)
        assert up.resend(now_us=T0 + 3_600 * US) == 0
        assert up.resend(now_us=T0 + 2 * DAY) == 0  # nothing is older than delivered
    finally:
        up.close()
    assert [p["id"] for p in receiver.payloads] == [f"basketry-alert-{opened.id}-opened"]
    assert rows(store)[0].notified_us is not None


def test_undelivered_events_older_than_the_resend_window_are_not_resent(store, receiver):
    Alerts(store).evaluate([drift(True)], now_us=T0)  # no webhook then
    late = Alerts(store, webhook=Webhook(receiver.url), resend_hours=24)
    try:
        assert late.resend(now_us=T0 + 2 * DAY) == 0
    finally:
        late.close()


def test_resolving_by_hand_and_retiring_versions(store, receiver):
    alerts = Alerts(store, webhook=Webhook(receiver.url))
    try:
        a, b, c = alerts.evaluate([drift(True), drift(True, version="v2"),
                                   drift(True, version="v3")], now_us=T0)
        done = alerts.resolve(a.id, now_us=T0 + 1, reason="known promotion")
        assert done is not None and done.details["resolution"]["reason"] == "known promotion"
        assert alerts.resolve(a.id) is None
        [retired] = alerts.retire_versions(["v3"], now_us=T0 + 2)
        assert retired.id == b.id
        assert [x.id for x in alerts.open_alerts()] == [c.id]
        assert alerts.webhook.flush(10)
    finally:
        alerts.close()
    assert sorted(p["id"] for p in receiver.payloads) == sorted(
        [f"basketry-alert-{x.id}-opened" for x in (a, b, c)]
        + [f"basketry-alert-{x.id}-resolved" for x in (a, b)])


def test_metrics_count_open_and_raised_alerts_and_deliveries(store, receiver):
    alerts = Alerts(store, webhook=Webhook(receiver.url))
    try:
        alerts.evaluate([drift(True), drift(True, version="v2"), perf(0.1)], now_us=T0)
        alerts.evaluate([drift(False, day=1)], now_us=T0 + DAY)
        assert alerts.webhook.flush(10)
        figures = {(f.name, tuple(f.labels.items())): f.value for f in alerts.metrics()}
    finally:
        alerts.close()
    assert figures[("basketry_monitor_alerts_open", (("kind", "items_orders"),))] == 1
    assert figures[("basketry_monitor_alerts_raised_total", (("kind", "items_orders"),))] == 2
    assert figures[("basketry_monitor_alerts_open", (("kind", "performance"),))] == 1
    assert figures[("basketry_monitor_alerts_open", (("kind", "basket_size"),))] == 0
    assert figures[("basketry_monitor_webhook_deliveries_total",
                    (("outcome", "delivered"),))] == 4
    assert figures[("basketry_monitor_webhook_deliveries_total", (("outcome", "failed"),))] == 0


def test_details_with_numpy_values_and_nan_are_stored_as_json(store):
    result = drift(True, top_contributors=[{"item": "a", "contribution": np.float32(0.5),
                                            "count": np.int64(3)}],
                   shares=np.array([0.1, 0.2]), p=float("nan"))
    [opened] = Alerts(store).evaluate([result], now_us=T0)
    stored = Alerts(store).open_alerts()[0].details["drift"]
    assert stored == opened.details["drift"] == {
        "top_contributors": [{"item": "a", "contribution": 0.5, "count": 3}],
        "shares": [0.1, 0.2], "p": None}


def test_alerts_written_before_the_conditions_existed_are_migrated(tmp_path):
    from alembic import command
    from alembic.config import Config

    from basketry.monitoring import migrations

    store = MonitorStore(f"sqlite:///{tmp_path / 'm.db'}")
    config = Config()
    config.set_main_option("script_location", str(migrations.SCRIPTS))
    with store.engine.begin() as c:
        config.attributes["connection"] = c
        command.upgrade(config, "0001")
        for _ in range(2):  # two open alerts of one condition, as nothing prevented them
            c.execute(sa.text("INSERT INTO alerts (time_us, kind, severity, model_version, "
                              "message) VALUES (1, 'items_orders', 'warning', 'v1', 'old')"))
    store.migrate()
    try:
        got = [(r.condition, r.resolved_us) for r in rows(store)]
        assert got == [("items_orders|v1", None), ("items_orders|v1", 1)]
        assert Alerts(store).evaluate([drift(True)], now_us=T0) == []  # already open
    finally:
        store.close()


def test_webhook_figures_stand_alone_when_the_store_is_down(tmp_path):
    from basketry.monitoring.alerts import webhook_figures
    from basketry.monitoring.store import MonitorStoreError

    (tmp_path / "m.db").write_bytes(b"not a database" * 100)
    alerts = Alerts(MonitorStore(f"sqlite:///{tmp_path / 'm.db'}", connect_timeout=1))
    with pytest.raises(MonitorStoreError, match="counting alerts failed") as info:
        alerts.metrics()
    assert "\n" not in str(info.value)
    with pytest.raises(MonitorStoreError, match="evaluating alerts failed"):
        alerts.evaluate([drift(True)])
    assert {(f.name, f.value) for f in webhook_figures(None)} == {
        ("basketry_monitor_webhook_deliveries_total", 0),
        ("basketry_monitor_webhook_retries_total", 0),
        ("basketry_monitor_webhook_queue_depth", 0)}


WORKER = """
import json, os, sys, time
from basketry.monitoring.alerts import Alerts
from basketry.monitoring.drift_types import DriftResult
from basketry.monitoring.store import MonitorStore

url, drifted, ready, go = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
alerts = Alerts(MonitorStore(url, connect_timeout=10))
result = DriftResult("items_orders", "v1", 0, 1, "psi", 1.0, 0.5, drifted, 100)
alerts.open_alerts()  # connected before the start
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
print(json.dumps([a.open for a in alerts.evaluate([result], now_us=2)]))
"""


@pytest.mark.parametrize("drifted", [True, False])
def test_worker_processes_evaluating_at_once_change_an_alert_once(store, tmp_path, drifted):
    if not drifted:
        Alerts(store).evaluate([drift(True)], now_us=1)
    go = tmp_path / "go"
    procs, readies = [], []
    for i in range(3):
        ready = tmp_path / f"ready{i}"
        readies.append(ready)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, store.url, "1" if drifted else "0", str(ready),
             str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    while not all(r.exists() for r in readies):
        assert all(p.poll() is None for p in procs), procs[0].communicate()
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    changes = [flag for out, _ in outs for flag in json.loads(out)]
    assert changes == [drifted]  # one process opened (or resolved) it, the others nothing
    assert len(rows(store)) == 1
