"""The store on SQLite and PostgreSQL: migrations, events, orders, privacy, retention."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from basketry.monitoring import RecommendationEvent, migrations, schema
from basketry.monitoring.privacy import customer_key
from basketry.monitoring.store import MonitorStore, MonitorStoreError

TABLES = {"recommendation_events", "orders", "order_items", "order_requests",
          "windows", "drift_results", "alerts"}
T0 = datetime(2024, 5, 1, tzinfo=UTC).timestamp()


def event(i: int, *, t: float = T0, version: str = "v1", endpoint: str = "single"
          ) -> RecommendationEvent:
    return RecommendationEvent(time=t + i, request_id=f"req-{i}", model_version=version,
                               endpoint=endpoint, basket=(f"a{i}", "milk"),
                               returned=("bread", f"b{i}", "eggs"), n_rules=2, n_fallback=1,
                               latency_ms=0.25 + i)


def test_migrate_from_empty_reaches_head_with_the_declared_schema(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = MonitorStore(store_url)
    assert store.revision() is None
    store.migrate()
    assert store.revision() == migrations.head_revision()
    with store.engine.connect() as connection:
        assert set(sa.inspect(connection).get_table_names()) >= TABLES
        # the migration builds exactly what schema.py declares (tables, columns, indexes)
        diff = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert diff == []
    store.close()


def test_migrate_again_is_a_no_op_and_keeps_the_rows(store):
    store.add_events([event(0)])
    store.migrate()
    store.migrate()
    assert store.revision() == migrations.head_revision()
    assert store.count("recommendation_events") == 1


def test_events_written_as_item_rows_are_carried_over_in_order(store_url):
    """Revision 0003 moved an event's items from rows of ``event_items`` into two columns."""
    from alembic import command
    from alembic.config import Config

    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    store = MonitorStore(store_url)
    config = Config()
    config.set_main_option("script_location", str(migrations.SCRIPTS))
    with store.engine.begin() as c:
        config.attributes["connection"] = c
        command.upgrade(config, "0002")
        for i in range(3):
            c.execute(sa.text(
                "INSERT INTO recommendation_events (id, time_us, request_id, model_version, "
                "endpoint, n_basket, n_returned, n_rules, n_fallback, latency_ms) VALUES "
                f"({i + 1}, {i}, 'r{i}', 'v1', 'single', 2, 3, 2, 1, 0.5)"))
            # written out of order, with a quote and a separator-like character
            for role, p, item in [(1, 2, "z"), (0, 1, f"b{i}"), (1, 0, 'x"q'),
                                  (0, 0, "a\x1fa"), (1, 1, "y")]:
                c.execute(sa.text("INSERT INTO event_items VALUES (:e, :r, :p, :i)"),
                          {"e": i + 1, "r": role, "p": p, "i": item})
        # an event with no items at all
        c.execute(sa.text(
            "INSERT INTO recommendation_events (id, time_us, request_id, model_version, "
            "endpoint, n_basket, n_returned, n_rules, n_fallback, latency_ms) VALUES "
            "(4, 3, 'r3', 'v1', 'associations', 0, 0, 0, 0, 0.5)"))
    store.migrate()
    try:
        back = store.read_events()
        assert [(e.basket, e.returned) for e in back] == [
            (("a\x1fa", f"b{i}"), ('x"q', "y", "z")) for i in range(3)] + [((), ())]
        with store.engine.connect() as connection:
            assert "event_items" not in sa.inspect(connection).get_table_names()
    finally:
        store.close()


MIGRATE = """
import sys
from basketry.monitoring.store import MonitorStore
MonitorStore(sys.argv[1], connect_timeout=60).migrate()
print("ok")
"""


def test_three_processes_migrating_at_once(store_url):
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, store_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    store = MonitorStore(store_url)
    assert store.revision() == migrations.head_revision()
    with store.engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(migrations.head_revision(),)]
    store.close()


def test_events_round_trip(store):
    events = [event(i, endpoint=e) for i, e in enumerate(["single", "batch", "associations"])]
    events.append(RecommendationEvent(time=T0 + 10, request_id="req-empty", model_version="v2",
                                      endpoint="single", basket=("x",), returned=(),
                                      n_rules=0, n_fallback=0, latency_ms=0.1))
    assert store.add_events(events) == 4
    assert store.add_events([]) == 0
    back = store.read_events()
    assert back == [RecommendationEvent(e.time, e.request_id, e.model_version, e.endpoint,
                                        tuple(e.basket), tuple(e.returned), e.n_rules,
                                        e.n_fallback, e.latency_ms) for e in events]
    assert store.read_events(start=T0 + 1, end=T0 + 2) == back[1:2]
    assert store.count("recommendation_events") == 4


def test_events_of_several_batches_keep_their_items(store):
    for start in range(0, 300, 100):
        store.add_events([event(i) for i in range(start, start + 100)])
    back = store.read_events()
    assert [e.request_id for e in back] == [f"req-{i}" for i in range(300)]
    assert all(e.basket == (f"a{i}", "milk") and e.returned == ("bread", f"b{i}", "eggs")
               for i, e in enumerate(back))


def test_an_event_refused_by_the_database_writes_nothing_of_its_batch(store):
    bad = RecommendationEvent(T0, "r", "v1", "nonsense", ("a",), ("b",), 1, 0, 1.0)
    with pytest.raises(MonitorStoreError, match="writing events failed"):
        store.add_events([event(0), bad])
    assert store.count("recommendation_events") == 0


def order(oid: str, items=("a", "b"), **extra):
    return {"order_id": oid, "time": "2024-05-01T10:00:00+02:00", "items": list(items), **extra}


def test_orders_are_idempotent_by_order_id(store):
    first = store.add_orders([order("o1", request_ids=["req-1", "req-2"]), order("o2")])
    assert (first.new, first.existing) == (2, 0)
    again = store.add_orders([order("o1", items=["z"]), order("o3"), order("o3")])
    assert (again.new, again.existing) == (1, 2)
    stored = {o["order_id"]: o for o in store.read_orders()}
    assert set(stored) == {"o1", "o2", "o3"}
    assert stored["o1"]["items"] == ["a", "b"]  # the re-sent order did not replace it
    assert stored["o1"]["request_ids"] == ["req-1", "req-2"]
    assert stored["o1"]["time"] == datetime(2024, 5, 1, 8, tzinfo=UTC).timestamp()
    assert store.count("order_items") == 6


def test_orders_in_many_chunks(store, monkeypatch):
    from basketry.monitoring import store as store_module

    monkeypatch.setattr(store_module, "ORDER_CHUNK", 7)
    result = store.add_orders([order(f"o{i}") for i in range(50)])
    assert (result.new, result.existing) == (50, 0)
    result = store.add_orders([order(f"o{i}") for i in range(40, 60)])
    assert (result.new, result.existing) == (10, 10)
    assert store.count("orders") == 60


def test_an_invalid_order_writes_nothing(store):
    from basketry.monitoring import OrderError

    with pytest.raises(OrderError, match=r"orders\[1\]\.items: empty"):
        store.add_orders([order("o1"), order("o2", items=[])])
    assert store.count("orders") == 0


def test_customers_are_not_stored_without_a_key(store):
    store.add_orders([order("o1", customer="alice@example.com")])
    assert store.read_orders()[0]["customer_key"] is None


def _dump(store: MonitorStore) -> str:
    """Every value of every table, as text."""
    with store.engine.connect() as connection:
        return "\n".join(repr(row) for t in schema.metadata.sorted_tables
                         for row in connection.execute(sa.select(t)))


def test_customers_are_stored_as_hmac_never_in_clear(store_url):
    secret = "s3cret-key-of-the-shop-0123"
    store = MonitorStore(store_url, customer_secret=secret)
    store.migrate()
    store.add_orders([order("o1", customer="alice@example.com"),
                      order("o2", customer="alice@example.com"),
                      order("o3", customer="bob@example.com")])
    keys = {o["order_id"]: o["customer_key"] for o in store.read_orders()}
    assert keys["o1"] == keys["o2"] == customer_key(secret, "alice@example.com")
    assert keys["o3"] != keys["o1"] and len(keys["o3"]) == 64
    dump = _dump(store)
    assert "alice" not in dump and "bob" not in dump
    # another secret, another key: the key cannot be recomputed without the secret
    assert customer_key("another-secret-0123456", "alice@example.com") != keys["o1"]
    store.close()


def test_retention_deletes_old_events_and_orders(store):
    day = 86_400.0
    now = T0 + 100 * day
    store.add_events([event(0, t=now - 40 * day), event(1, t=now - 10 * day)])
    store.add_orders([{"order_id": "old", "time": now - 31 * day, "items": ["a"],
                       "request_ids": ["req-0"]},
                      {"order_id": "new", "time": now - 29 * day, "items": ["b"]}])
    deleted = store.delete_older_than(30, now=now)
    assert (deleted.events, deleted.orders) == (1, 1)
    assert [e.request_id for e in store.read_events()] == ["req-1"]
    assert [o["order_id"] for o in store.read_orders()] == ["new"]
    assert store.count("recommendation_events") == 1
    assert store.count("order_items") == 1 and store.count("order_requests") == 0
    assert store.delete_older_than(30, now=now) == type(deleted)(0, 0)


def test_retention_in_chunks(store, monkeypatch):
    from basketry.monitoring import store as store_module

    monkeypatch.setattr(store_module, "DELETE_CHUNK", 3)
    store.add_events([event(i) for i in range(10)])
    assert store.delete_older_than(0, now=T0 + 1000).events == 10
    assert store.count("recommendation_events") == 0


def test_a_postgresql_url_that_does_not_connect_is_one_line_with_the_password_masked():
    pytest.importorskip("psycopg2")
    url = "postgresql+psycopg2://user:hunter2@127.0.0.1:1/monitoring"
    store = MonitorStore(url, connect_timeout=2)
    with pytest.raises(MonitorStoreError) as info:
        store.migrate()
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith("monitoring store postgresql+psycopg2://user:***@127.0.0.1:1/")
    assert "connecting failed" in message


def test_a_sqlite_file_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = MonitorStore(f"sqlite:///{blocker / 'monitoring.db'}")
    with pytest.raises(MonitorStoreError, match="not-a-directory") as info:
        store.migrate()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("url", ["nonsense", "nosuchdb://x/y"])
def test_a_url_that_is_not_a_database_url(url):
    with pytest.raises(MonitorStoreError, match="not a usable database URL"):
        MonitorStore(url)


WRITE = """
import sys
from basketry.monitoring import RecommendationEvent
from basketry.monitoring.store import MonitorStore
store = MonitorStore(sys.argv[1], connect_timeout=60)
name = sys.argv[2]
for b in range(20):
    store.add_events([RecommendationEvent(1.7e9, f"{name}-{b}-{i}", "v1", "batch",
                                          (f"in-{name}-{b}-{i}",), (f"out-{name}-{b}-{i}", "x"),
                                          1, 1, 1.0) for i in range(100)])
"""


def test_writers_in_several_processes_keep_each_event_with_its_items(store, store_url):
    procs = [subprocess.Popen([sys.executable, "-c", WRITE, store_url, name],
                              stderr=subprocess.PIPE, text=True) for name in ("p", "q", "r")]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    back = store.read_events()
    assert len(back) == 3 * 20 * 100
    assert all(e.basket == (f"in-{e.request_id}",) and e.returned == (f"out-{e.request_id}", "x")
               for e in back)


def test_analyze_keeps_the_rows(store):
    store.add_events([event(0)])
    store.analyze()
    assert store.count("recommendation_events") == 1


def test_the_head_constant_is_alembics_head():
    assert migrations.head_revision() == migrations.HEAD


OPEN_AT_HEAD = """
import sys
from basketry.monitoring.store import MonitorStore
MonitorStore(sys.argv[1]).migrate()
print("alembic" in sys.modules)
"""


def test_a_store_at_head_opens_without_alembic(store, store_url):
    """A serving worker's writer process opens the store at every start: at head, alembic (a
    third of a second of imports) is not needed."""
    done = subprocess.run([sys.executable, "-c", OPEN_AT_HEAD, store_url], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_the_drift_reads_every_returned_item_where_rules_answered(store):
    """A scoring on one scale may rank a popular item above a rule's: where rules answered,
    every returned item goes to the drift code (which finds the rule explaining each), not
    the first ``n_rules``; an answer of popular items alone gives none."""
    from basketry.monitoring import aggregates

    store.add_events([
        RecommendationEvent(T0, "mixed", "v1", "single", ("a",), ("popular", "ruled"), 1, 1, 1.0),
        RecommendationEvent(T0 + 1, "fallback", "v1", "single", ("z",), ("popular",), 0, 1, 1.0),
    ])
    with store.engine.connect() as c:
        got = aggregates.event_items(c, round(T0 * 1e6), round((T0 + 2) * 1e6))
    assert got.basket_items == ["a", "z"]
    assert got.rule_items == ["popular", "ruled"]
    assert got.rule_ptr.tolist() == [0, 2, 2]
