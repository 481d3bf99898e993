"""The background writer: never blocks the caller, counts what it could not write, flushes."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from basketry.monitoring import EventWriter, MonitorSettings, RecommendationEvent, sampled
from basketry.monitoring.store import MonitorStore

FAST = MonitorSettings(capture=True, max_delay=0.02, batch_size=50, log_interval=3600,
                       shutdown_timeout=5)
SECRET_ITEM = "basket-item-that-must-never-be-logged"


def ev(i: int, request_id: str | None = None) -> RecommendationEvent:
    return RecommendationEvent(time=1.7e9 + i, request_id=request_id or f"req-{i}",
                               model_version="v1", endpoint="single",
                               basket=(SECRET_ITEM, f"a{i}"), returned=(f"b{i}",),
                               n_rules=1, n_fallback=0, latency_ms=0.5)


class Sink:
    """A store stand-in: records batches; fails the first ``fail`` calls, or hangs until
    released when ``hang`` is set."""

    def __init__(self, fail: int = 0, hang: bool = False) -> None:
        self.batches: list[list[RecommendationEvent]] = []
        self.fail, self.calls = fail, 0
        self.release = threading.Event()
        if not hang:
            self.release.set()

    def add_events(self, events):
        self.calls += 1
        self.release.wait()
        if self.calls <= self.fail:
            raise RuntimeError("database is locked\nsecond line")
        self.batches.append(list(events))
        return len(events)


def accounted(writer: EventWriter, accepted: int) -> None:
    """Every accepted event is written, given up or lost at shutdown, exactly once."""
    c = writer.counters.snapshot()
    assert c["written"] + c["failed"] + c["lost_at_shutdown"] == accepted, c


def test_flush_on_close_writes_everything_to_a_real_store(tmp_path):
    store = MonitorStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.migrate()
    writer = EventWriter(store, FAST.replace(max_delay=5.0)).start()
    assert all(writer.offer(ev(i)) for i in range(1234))
    writer.close()
    assert store.count("recommendation_events") == 1234
    assert writer.counters["written"] == 1234 and writer.pending == 0
    assert not writer.offer(ev(0))  # closed: nothing more is taken
    accounted(writer, 1234)


def test_events_are_written_in_batches_within_the_delay():
    sink = Sink()
    writer = EventWriter(sink, FAST).start()
    for i in range(120):
        writer.offer(ev(i))
    assert writer.flush(30)
    assert sum(len(b) for b in sink.batches) == 120
    assert max(len(b) for b in sink.batches) <= FAST.batch_size
    writer.close()


def test_a_hung_store_never_blocks_offer_and_drops_are_counted():
    sink = Sink(hang=True)
    writer = EventWriter(sink, FAST.replace(queue_size=100, shutdown_timeout=0.2)).start()
    results = [writer.offer(ev(i)) for i in range(1000)]  # would hang here if offer blocked
    accepted = sum(results)
    assert writer.counters["dropped"] == results.count(False) >= 1000 - 100 - FAST.batch_size
    writer.close()  # the writer is stuck in the store: close still returns
    sink.release.set()
    writer._thread.join(5)
    accounted(writer, accepted)


@pytest.mark.parametrize("down", ["postgresql", "sqlite"])
def test_a_store_that_is_down_is_retried_counted_and_logged_never_raised(down, tmp_path,
                                                                        caplog):
    if down == "postgresql":
        pytest.importorskip("psycopg2")
        store = MonitorStore("postgresql+psycopg2://u:pw@127.0.0.1:1/m", connect_timeout=1)
    else:  # a SQLite file below a file: never openable, even by root
        (tmp_path / "file").write_text("")
        store = MonitorStore(f"sqlite:///{tmp_path / 'file' / 'm.db'}")
    settings = FAST.replace(queue_size=200, write_retries=2, shutdown_timeout=1)
    writer = EventWriter(store, settings).start()
    with caplog.at_level(logging.WARNING, logger="basketry.monitoring"):
        results = [writer.offer(ev(i)) for i in range(2000)]
        writer.flush(30)
        writer.close()
    c = writer.counters.snapshot()
    assert c["dropped"] == results.count(False) > 0
    assert c["written"] == 0 and c["write_errors"] >= 1
    accounted(writer, sum(results))
    text = caplog.text
    assert "writing 50 events failed" in text and "pw@" not in text
    assert SECRET_ITEM not in text
    # rate-limited: one line about failures and one about drops in the interval, at most
    assert sum("failed (attempt" in r.message for r in caplog.records) == 1
    assert sum("dropped since the last report" in r.message for r in caplog.records) <= 1


def test_a_failing_write_is_retried_then_succeeds():
    sink = Sink(fail=2)
    writer = EventWriter(sink, FAST.replace(write_retries=3)).start()
    for i in range(10):
        writer.offer(ev(i))
    assert writer.flush(30)
    writer.close()
    assert [e.request_id for b in sink.batches for e in b] == [f"req-{i}" for i in range(10)]
    c = writer.counters.snapshot()
    assert (c["write_errors"], c["failed"], c["written"]) == (2, 0, 10)


def test_a_batch_failing_every_retry_is_given_up_and_counted():
    sink = Sink(fail=10**6)
    writer = EventWriter(sink, FAST.replace(write_retries=1)).start()
    for i in range(10):
        writer.offer(ev(i))
    assert writer.flush(30)
    writer.close()
    c = writer.counters.snapshot()
    assert c["failed"] == 10 and c["write_errors"] == sink.calls
    accounted(writer, 10)


def test_capture_off_records_nothing():
    sink = Sink()
    writer = EventWriter(sink, FAST.replace(capture=False)).start()
    assert not writer.offer(ev(0))
    writer.close()
    assert sink.calls == 0


def test_sampling_keeps_a_batch_whole_and_is_the_same_in_every_process():
    sink = Sink()
    writer = EventWriter(sink, FAST.replace(sample_rate=0.3)).start()
    ids = [f"batch-{n}" for n in range(400)]
    for rid in ids:
        for i in range(3):  # the three items of one batch request share its id
            writer.offer(ev(i, request_id=rid))
    writer.close()
    kept = [e.request_id for b in sink.batches for e in b]
    counts = {rid: kept.count(rid) for rid in set(kept)}
    assert set(counts.values()) == {3}
    assert writer.counters["sampled_out"] == 3 * (len(ids) - len(counts))
    assert 0.2 < len(counts) / len(ids) < 0.4
    # the same decision in another process (no per-process hash salt)
    code = ("from basketry.monitoring import sampled; import sys; "
            "print(''.join('1' if sampled(f'batch-{n}', 0.3) else '0' for n in range(400)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == "".join("1" if sampled(rid, 0.3) else "0" for rid in ids)
    assert other == "".join("1" if rid in counts else "0" for rid in ids)


def test_rates_zero_and_one():
    assert all(sampled(f"r{i}", 1.0) for i in range(100))
    assert not any(sampled(f"r{i}", 0.0) for i in range(100))


def test_monitoring_imports_without_sqlalchemy():
    code = ("import sys; sys.modules['sqlalchemy'] = None; sys.modules['alembic'] = None\n"
            "import basketry.monitoring as m\n"
            "w = m.EventWriter(object(), m.MonitorSettings(capture=False))\n"
            "assert not w.offer(None)\n"
            "try:\n    m.MonitorStore\nexcept ImportError:\n    print('store needs sqlalchemy')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "store needs sqlalchemy"
