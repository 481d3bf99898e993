"""`basketry monitor ingest` and `basketry monitor retention` end to end, on a real store: a
SQLite file, and PostgreSQL when ``BASKETRY_TEST_POSTGRES`` is set (tests/monitoring/conftest.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import read_baskets, sample_path

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")
pytest.importorskip("alembic", reason="the monitor extra is not installed")

from basketry.monitoring import RecommendationEvent
from basketry.monitoring.store import MonitorStore
from tests.monitoring.conftest import no_receipt_margin, pg_url  # noqa: F401  (fixtures)

SECRET = "a-secret-of-24-characters"
DAY = 86_400.0


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line(status: int, stderr: str, *needles: str) -> None:
    assert status == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    for needle in needles:
        assert needle in stderr, (needle, stderr)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'monitoring.db'}"
    return request.getfixturevalue("pg_url")


def open_store(url: str) -> MonitorStore:
    store = MonitorStore(url, connect_timeout=5)
    store.migrate()
    return store


@pytest.fixture(scope="module")
def sample():
    return read_baskets(sample_path())


def test_ingest_stores_every_order_of_the_sample_once(db, sample, monkeypatch):
    monkeypatch.delenv("BASKETRY_MONITOR_CUSTOMER_KEY", raising=False)
    status, stdout, stderr = invoke("monitor", "ingest", str(sample_path()), "--db", db)
    assert status == 0, stderr
    n = sample.n_baskets
    assert f"{n:,} new, 0 already known" in stdout
    assert "customers not stored" in stdout

    store = open_store(db)
    try:
        stored = {o["order_id"]: o for o in store.read_orders()}
        assert len(stored) == store.count("orders") == n
        seconds = sample.timestamps.astype("datetime64[us]").astype(np.int64) / 1e6
        for b in range(n):  # every basket is an order: its id, time and items
            order = stored[str(sample.basket_ids[b])]
            assert sorted(order["items"]) == sorted(sample.basket(b))
            assert order["time"] == pytest.approx(seconds[b], abs=1e-6)
            assert order["customer_key"] is None  # no key configured: customers not stored
        assert store.count("order_items") == sample.indices.shape[0]

        # the same file again: idempotent by order id
        status, stdout, stderr = invoke("monitor", "ingest", str(sample_path()), "--db", db)
        assert status == 0, stderr
        assert f"0 new, {n:,} already known" in stdout
        assert store.count("orders") == n and store.count("order_items") == sample.indices.size
    finally:
        store.close()


def test_ingest_keys_customers_and_never_stores_them_in_clear(db, tmp_path, monkeypatch):
    table = tmp_path / "orders.csv"
    table.write_text("invoice,sku,when,customer\n"
                     "A1,apple,2024-05-01T10:00:00Z,alice@example.com\n"
                     "A1,pear,2024-05-01T10:00:00Z,alice@example.com\n"
                     "B2,plum,2024-05-02T11:30:00+02:00,\n")
    monkeypatch.setenv("BASKETRY_MONITOR_CUSTOMER_KEY", SECRET)
    status, stdout, stderr = invoke(
        "monitor", "ingest", str(table), "--db", db, "--transaction-col", "invoice",
        "--item-col", "sku", "--timestamp-col", "when", "--customer-col", "customer")
    assert status == 0, stderr
    assert "2 new, 0 already known" in stdout and "customers keyed (HMAC)" in stdout
    store = open_store(db)
    try:
        orders = {o["order_id"]: o for o in store.read_orders()}
        with store.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT * FROM orders").all()
    finally:
        store.close()
    expected = hmac.new(SECRET.encode(), b"alice@example.com", hashlib.sha256).hexdigest()
    assert orders["A1"]["customer_key"] == expected
    assert orders["B2"]["customer_key"] is None  # the file names no customer for B2
    assert orders["A1"]["time"] == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
    assert orders["B2"]["time"] == datetime(2024, 5, 2, 9, 30, tzinfo=UTC).timestamp()
    assert not any("alice" in str(value) for row in rows for value in row)


def test_a_file_without_timestamps_is_refused_naming_the_flag(tmp_path):
    store = tmp_path / "store" / "monitoring.db"
    table = tmp_path / "orders.csv"
    table.write_text("invoice,sku\nA1,apple\nA1,pear\nB2,plum\n")
    status, _, stderr = invoke("monitor", "ingest", str(table), "--db", f"sqlite:///{store}",
                               "--transaction-col", "invoice", "--item-col", "sku")
    assert_one_line(status, stderr, "orders.csv", "--timestamp-col")
    assert not store.parent.exists()  # refused before the store was opened

    lines = tmp_path / "baskets.dat"
    lines.write_text("apple pear\nplum\n")
    status, _, stderr = invoke("monitor", "ingest", str(lines), "--db", f"sqlite:///{store}")
    assert_one_line(status, stderr, "basket lines", "--timestamp-col")
    assert not store.parent.exists()

    table.write_text("invoice,sku,when\nA1,apple,2024-05-01T10:00:00Z\nB2,plum,\n")
    status, _, stderr = invoke("monitor", "ingest", str(table), "--db", f"sqlite:///{store}",
                               "--transaction-col", "invoice", "--item-col", "sku",
                               "--timestamp-col", "when")
    assert_one_line(status, stderr, "transaction B2 has no timestamp")
    assert not store.parent.exists()


def test_the_check_reports_its_progress(sample, monkeypatch):
    from basketry.training import orders_in

    monkeypatch.setattr(orders_in, "PROGRESS_EVERY", 1_000)
    seen: list[tuple[int, int]] = []
    orders = orders_in.orders_from_baskets(sample, lambda done, total: seen.append((done, total)))
    n = sample.n_baskets
    assert len(orders) == n
    assert seen == [(done, n) for done in range(1_000, n, 1_000)] + [(n, n)]


def test_one_bad_order_writes_nothing(db, tmp_path):
    table = tmp_path / "orders.csv"
    table.write_text("invoice,sku,when\n"
                     "A1,apple,2024-05-01T10:00:00Z\n"
                     f"B2,{'x' * 300},2024-05-02T10:00:00Z\n")
    args = ["--transaction-col", "invoice", "--item-col", "sku", "--timestamp-col", "when"]
    status, _, stderr = invoke("monitor", "ingest", str(table), "--db", db, *args)
    assert_one_line(status, stderr, "transaction B2", "longer than 256 characters")
    store = open_store(db)
    try:
        assert store.count("orders") == 0
    finally:
        store.close()


def test_a_store_that_does_not_connect_is_one_line_with_the_password_masked(tmp_path):
    pytest.importorskip("psycopg2")
    table = tmp_path / "orders.csv"
    table.write_text("invoice,sku,when\nA1,apple,2024-05-01T10:00:00Z\n")
    status, _, stderr = invoke(
        "monitor", "ingest", str(table), "--db",
        "postgresql+psycopg2://user:hunter2@127.0.0.1:1/monitoring", "--transaction-col",
        "invoice", "--item-col", "sku", "--timestamp-col", "when")
    assert_one_line(status, stderr, "user:***@127.0.0.1:1", "connecting failed")
    assert "hunter2" not in stderr


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("BASKETRY_MONITOR_CUSTOMER_KEY", "short")
    status, _, stderr = invoke("monitor", "ingest", str(sample_path()),
                               "--db", f"sqlite:///{tmp_path / 'm.db'}")
    assert_one_line(status, stderr, "BASKETRY_MONITOR_CUSTOMER_KEY")


def event(request_id: str, when: float) -> RecommendationEvent:
    return RecommendationEvent(time=when, request_id=request_id, model_version="1",
                               endpoint="single", basket=("apple",), returned=("pear", "plum"),
                               n_rules=1, n_fallback=1, latency_ms=0.5)


def test_retention_deletes_what_is_older(db, tmp_path, monkeypatch):
    now = time.time()
    iso = [datetime.fromtimestamp(now - days * DAY, UTC).isoformat() for days in (400, 10)]
    table = tmp_path / "orders.csv"
    table.write_text(f"invoice,sku,when\nold,apple,{iso[0]}\nnew,pear,{iso[1]}\n")
    args = ["--transaction-col", "invoice", "--item-col", "sku", "--timestamp-col", "when"]
    assert invoke("monitor", "ingest", str(table), "--db", db, *args)[0] == 0
    store = open_store(db)
    try:
        store.add_events([event("old", now - 40 * DAY), event("new", now - DAY)])

        monkeypatch.setenv("BASKETRY_MONITOR_RETENTION_DAYS", "0")  # off: nothing deleted
        status, stdout, stderr = invoke("monitor", "retention", "--db", db)
        assert status == 0, stderr
        assert "retention is off" in stdout
        assert store.count("orders") == 2 and store.count("recommendation_events") == 2

        monkeypatch.setenv("BASKETRY_MONITOR_RETENTION_DAYS", "30")  # the setting
        status, stdout, stderr = invoke("monitor", "retention", "--db", db)
        assert status == 0, stderr
        assert "deleted 1 events and 1 orders older than 30 days" in stdout
        assert [o["order_id"] for o in store.read_orders()] == ["new"]
        assert [e.request_id for e in store.read_events()] == ["new"]

        status, stdout, stderr = invoke("monitor", "retention", "--days", "0", "--db", db)
        assert status == 2  # --days must be >= 1 (0 is the setting's "keep everything")
        status, stdout, stderr = invoke("monitor", "retention", "--days", "5", "--db", db)
        assert status == 0, stderr  # the flag wins over the setting
        assert "deleted 0 events and 1 orders older than 5 days" in stdout
        assert store.count("orders") == 0 and store.count("recommendation_events") == 1
    finally:
        store.close()


def test_retention_creates_no_store(tmp_path):
    path = tmp_path / "none" / "monitoring.db"
    status, stdout, stderr = invoke("monitor", "retention", "--days", "30",
                                    "--db", f"sqlite:///{path}")
    assert status == 0, stderr
    assert "no monitoring store" in stdout
    assert not path.parent.exists()


def test_the_store_defaults_to_basketry_home(tmp_path, monkeypatch):
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BASKETRY_MONITOR_DB", raising=False)
    table = tmp_path / "orders.csv"
    table.write_text("invoice,sku,when\nA1,apple,2024-05-01T10:00:00Z\n")
    status, _, stderr = invoke("monitor", "ingest", str(table), "--transaction-col", "invoice",
                               "--item-col", "sku", "--timestamp-col", "when")
    assert status == 0, stderr
    assert (tmp_path / "home" / "monitoring.db").is_file()


# -- monitor performance ---------------------------------------------------------------------

def _filled_store(db: str, tmp_path) -> str:
    """A store with a day of events and orders, and the model that answered them."""
    from tests.serving.conftest import write_version

    version = write_version(tmp_path / "model", "v1")
    t0 = 1_700_000_000 // 86_400 * 86_400
    store = MonitorStore(db)
    store.migrate()
    store.add_events([RecommendationEvent(t0 + i, f"r{i}", version, "single", ("a",),
                                          ("b", "c"), 2, 0, 1.0) for i in range(10)])
    store.add_orders([{"order_id": f"o{i}", "time": t0 + 100 + i, "items": ["a", "b", "c"],
                       "request_ids": [f"r{i}"]} for i in range(10)])
    store.close()
    return version


@pytest.mark.usefixtures("no_receipt_margin")
def test_performance_prints_the_replay_and_the_attribution(db, tmp_path, wide_console):
    version = _filled_store(db, tmp_path)
    status, out, err = invoke("monitor", "performance", "--db", db, "--since", "2023-11-14",
                              "--until", "2023-11-15", "--model", str(tmp_path / "model"))
    assert status == 0, err
    assert "2023-11-14 00:00" in out and version[:12] in out
    assert "1 computed" in out
    # every order hides each of its 3 items once: 30 queries; all 10 shown recommendations
    # had a bought item (b and c were bought)
    row = next(line for line in out.splitlines() if "2023-11-14 00:00" in line)
    assert "30" in row and "100.0%" in row
    status, out, err = invoke("monitor", "performance", "--db", db, "--since", "2023-11-14",
                              "--until", "2023-11-15", "--model", str(tmp_path / "model"))
    assert "1 windows reused, 0 computed" in out


def test_performance_says_which_model_is_missing(db, tmp_path):
    version = _filled_store(db, tmp_path)
    status, out, err = invoke("monitor", "performance", "--db", db, "--since", "2023-11-14",
                              "--until", "2023-11-15", "--output", "json")
    assert status == 0, err
    import json

    doc = json.loads(out)
    (window,) = doc["windows"]
    assert window["replay"] is None and version in window["replay_note"]
    assert window["attributed"]["shown"] == 10
    assert doc["versions"][version]["model_available"] is False


@pytest.mark.parametrize(("args", "needle"), [
    (("--window", "fortnight"), "window 'fortnight'"),
    (("--since", "yesterday"), "--since"),
    (("--k", "3"), "--k"),
    (("--output", "xml"), "--output"),
    (("--since", "2026-02-01", "--until", "2026-01-01"), "must be before"),
    (("--window", "hour", "--since", "1990-01-01"), "more than 2,000"),
])
def test_performance_refuses_bad_options_in_one_line(tmp_path, args, needle):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    _filled_store(db, tmp_path)
    status, out, err = invoke("monitor", "performance", "--db", db, *args)
    assert status == 2, (out, err)
    assert needle in err, err


def test_performance_of_an_unknown_version_names_it(db, tmp_path):
    version = _filled_store(db, tmp_path)
    status, _, err = invoke("monitor", "performance", "--db", db, "--model-version", "nope")
    assert_one_line(status, err, "'nope'", version)


def test_performance_creates_no_store(tmp_path):
    path = tmp_path / "none" / "m.db"
    status, _, err = invoke("monitor", "performance", "--db", f"sqlite:///{path}")
    assert_one_line(status, err, "no monitoring store", str(path))
    assert not path.exists() and not path.parent.exists()


@pytest.mark.usefixtures("no_receipt_margin")
@pytest.mark.parametrize("damage", ["not json", '{"a": 1}', '["a", 2]', '[["a"]]', "null"])
@pytest.mark.parametrize("command", ["performance", "drift"])
def test_an_item_list_edited_by_hand_is_one_line(tmp_path, command, damage):
    """A store whose stored answers were edited (or damaged) is named, not a crash."""
    import sqlite3

    db = f"sqlite:///{tmp_path / 'm.db'}"
    _filled_store(db, tmp_path)
    with sqlite3.connect(tmp_path / "m.db") as connection:
        connection.execute("UPDATE recommendation_events SET returned = ?, basket = ? "
                           "WHERE request_id = 'r3'", (damage, damage))
    status, _, err = invoke("monitor", command, "--db", db, "--since", "2023-11-14",
                            "--until", "2023-11-15", "--model", str(tmp_path / "model"))
    assert_one_line(status, err, "not a JSON array of strings", "edited by hand")


# -- monitor drift, report, watch ------------------------------------------------------------

@pytest.mark.usefixtures("no_receipt_margin")
def test_drift_prints_the_results_and_stores_them(db, tmp_path, wide_console):
    _filled_store(db, tmp_path)
    args = ("monitor", "drift", "--db", db, "--since", "2023-11-14", "--until", "2023-11-15",
            "--model", str(tmp_path / "model"))
    status, out, err = invoke(*args, "--all")
    assert status == 0, err
    assert "rule_confidence" in out and "broken_rule_mass" in out
    assert "no training profile" in out  # the hand-made model carries none
    status, out, err = invoke(*args, "--output", "json")
    import json

    doc = json.loads(out)
    assert doc["windows_reused"] == 1 and doc["windows_computed"] == 0
    assert {r["feature"] for r in doc["results"]} >= {"rule_confidence", "broken_rule_mass"}


def test_report_writes_one_offline_html_file(db, tmp_path):
    _filled_store(db, tmp_path)
    out = tmp_path / "report.html"
    status, _, err = invoke("monitor", "report", "--db", db, "--since", "2023-11-14",
                                 "--until", "2023-11-15", "--model", str(tmp_path / "model"),
                                 "--out", str(out))
    assert status == 0, err
    html = out.read_text()
    import re

    assert "<html" in html and "Plotly" in html
    # nothing fetched: no resource URL in the page's own markup (plotly.js's inlined source
    # holds link strings of its own, never loaded: the browser test checks the requests)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"""(src|href)=["']https?://""", markup)
    assert "<script src=" not in html
    assert not list(tmp_path.glob(".report.html.*"))  # no temporary file left


@pytest.mark.parametrize(("args", "needle"), [
    ((), "--out"),
    (("--out", "."), "is a directory"),
    (("--out", "/nonexistent-dir/r.html"), "no directory"),
    (("--output", "pdf", "--out", "r.html"), "--output"),
])
def test_report_refuses_bad_targets_in_one_line(tmp_path, args, needle):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    _filled_store(db, tmp_path)
    status, _, err = invoke("monitor", "report", "--db", db, *args)
    assert status == 2 and needle in err, err


def test_watch_once_runs_a_cycle_and_a_second_watcher_steps_aside(db, tmp_path, monkeypatch):
    monkeypatch.setenv("BASKETRY_HOME", str(tmp_path / "home"))
    _filled_store(db, tmp_path)
    status, out, err = invoke("monitor", "watch", "--once", "--db", db, "--model",
                              str(tmp_path / "model"))
    assert status == 0, err
    assert "monitoring cycle:" in out
    from basketry.monitoring.watch import watch_lock

    with watch_lock(tmp_path / "home" / "monitor-watch.lock") as mine:
        assert mine
        status, out, err = invoke("monitor", "watch", "--once", "--db", db)
    assert status == 0 and "another watcher" in out


@pytest.mark.parametrize("interval", ["0", "-5m", "soon", "5y"])
def test_watch_refuses_a_bad_interval(tmp_path, interval):
    status, _, err = invoke("monitor", "watch", "--interval", interval, "--db",
                            f"sqlite:///{tmp_path / 'm.db'}")
    assert status == 2 and "--interval" in err, err


@pytest.mark.parametrize(("option", "value"), [("--retrain-cooldown", "soon"),
                                               ("--retrain-cooldown", "0"),
                                               ("--retrain-args", "'unclosed")])
def test_watch_refuses_bad_retrain_options_before_any_work(tmp_path, option, value):
    status, _, err = invoke("monitor", "watch", "--retrain", option, value, "--db",
                            f"sqlite:///{tmp_path / 'm.db'}")
    assert status == 2 and option in err, err
    assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize("command", ["performance", "drift", "report", "watch"])
def test_reports_on_an_unreachable_store_are_one_line_with_the_password_masked(command,
                                                                              tmp_path):
    pytest.importorskip("psycopg2")
    url = "postgresql+psycopg2://shop:s3cret@127.0.0.1:1/monitoring"
    extra = ("--out", str(tmp_path / "r.html")) if command == "report" else \
        ("--once",) if command == "watch" else ()
    status, out, err = invoke("monitor", command, "--db", url, *extra)
    assert_one_line(status, err, "127.0.0.1", "***")
    assert "s3cret" not in err + out
    assert not (tmp_path / "r.html").exists()
