"""The writer process: a worker's events written by a process of its own, every event counted
once, a store that cannot be opened one line, a process that dies started again, and never one
left behind by its worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from basketry.monitoring import MonitorSettings, RecommendationEvent
from basketry.monitoring.process_writer import CHUNK, ProcessWriter, WriterStartError
from basketry.monitoring.store import MonitorStore

SECRET_ITEM = "basket-item-that-must-never-be-logged"


def row(i: int, request_id: str | None = None) -> tuple:
    return (1.7e9 + i, request_id or f"req-{i}", "v1", "single", [SECRET_ITEM, f"a{i}"],
            [f"b{i}", f"c{i}"], 1, 1, 0.5)


def settings(tmp_path: Path, **changes: object) -> MonitorSettings:
    base = MonitorSettings(capture=True, db=f"sqlite:///{tmp_path / 'm.db'}", max_delay=0.05,
                           log_interval=3600, shutdown_timeout=5)
    return base.replace(**changes)


def accounted(counts: dict[str, int], offered: int) -> None:
    """Every event offered is in exactly one outcome."""
    assert (counts["sampled_out"] + counts["dropped"] + counts["written"] + counts["failed"]
            + counts["lost_at_shutdown"]) == offered, counts


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def count(s: MonitorSettings) -> int:
    store = MonitorStore(s.url())
    try:
        return store.count("recommendation_events")
    finally:
        store.close()


def test_everything_offered_is_written_by_the_process_and_counted(tmp_path: Path) -> None:
    s = settings(tmp_path, max_delay=5.0)
    writer = ProcessWriter(s).start()
    n = 3 * CHUNK + 17  # whole chunks sent by offer, the rest at close
    assert all(writer.offer_row(row(i)) for i in range(n))
    writer.close()
    assert not writer.offer_row(row(0))  # closed: nothing more is taken
    c = writer.counts()
    assert c["written"] == n and c["queue_depth"] == 0
    accounted(c, n)
    assert count(s) == n
    assert writer._proc is not None and writer._proc.poll() == 0


def test_flush_returns_once_written_and_events_come_back_whole(tmp_path: Path) -> None:
    s = settings(tmp_path)
    writer = ProcessWriter(s).start()
    event = RecommendationEvent(1.7e9, "one", "v9", "batch", ("x", "y"), ("z",), 1, 0, 1.25)
    assert writer.offer(event)
    for i in range(40):
        writer.offer_row(row(i))
    assert writer.flush(30)
    assert writer.counts()["written"] == 41
    store = MonitorStore(s.url())
    try:
        (back,) = [e for e in store.read_events() if e.request_id == "one"]
    finally:
        store.close()
    assert back == event
    writer.close()


def test_sampling_is_decided_in_the_worker(tmp_path: Path) -> None:
    writer = ProcessWriter(settings(tmp_path, sample_rate=0.0)).start()
    assert not any(writer.offer_row(row(i)) for i in range(300))
    writer.close()
    c = writer.counts()
    assert c["sampled_out"] == 300 and c["written"] == 0


def test_capture_off_takes_nothing_and_starts_no_process(tmp_path: Path) -> None:
    writer = ProcessWriter(settings(tmp_path, capture=False)).start()
    assert not writer.offer_row(row(0)) and writer._proc is None
    writer.close()
    assert writer.counts()["written"] == 0 and not (tmp_path / "m.db").exists()


def test_a_store_that_cannot_be_opened_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")  # a SQLite file below a file: never openable
    url = f"sqlite:///{tmp_path / 'file' / 'm.db'}"
    writer = ProcessWriter(settings(tmp_path, db=url, connect_timeout=1))
    with pytest.raises(WriterStartError) as raised:
        writer.start()
    message = str(raised.value)
    assert str(tmp_path / "file") in message and "\n" not in message
    assert not raised.value.missing_extra
    writer.close(0)
    assert writer._proc is not None and writer._proc.poll() is not None


def test_a_process_that_dies_is_counted_logged_and_started_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = settings(tmp_path)
    writer = ProcessWriter(s).start()
    for i in range(50):
        writer.offer_row(row(i))
    assert writer.flush(30)
    first = writer._proc
    assert first is not None
    with caplog.at_level(logging.WARNING, logger="basketry.monitoring"):
        os.kill(first.pid, signal.SIGKILL)
        offered = 50
        deadline = time.monotonic() + 60
        while writer._proc is first or writer.counts()["written"] <= 50:
            assert time.monotonic() < deadline, writer.counts()
            writer.offer_row(row(offered))  # serving goes on meanwhile
            offered += 1
            time.sleep(0.01)
        writer.close()
    c = writer.counts()
    assert c["write_errors"] >= 1 and c["written"] > 50
    accounted(c, offered)
    assert count(s) == c["written"]
    lines = [r.getMessage() for r in caplog.records if "writer process exited" in
             r.getMessage()]
    assert len(lines) == 1 and "starting it again" in lines[0]
    assert SECRET_ITEM not in caplog.text


def test_store_failures_are_logged_by_the_worker_and_drops_once_per_interval(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    s = settings(tmp_path, queue_size=10, write_retries=1, connect_timeout=0.2,
                 shutdown_timeout=1)
    writer = ProcessWriter(s).start()
    lock = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the store
    try:
        with caplog.at_level(logging.WARNING, logger="basketry.monitoring"):
            for i in range(5 * CHUNK):
                writer.offer_row(row(i))
            deadline = time.monotonic() + 30
            while writer.counts()["write_errors"] < 1 or not caplog.records:
                assert time.monotonic() < deadline, writer.counts()
                time.sleep(0.05)
            time.sleep(0.3)
            writer.close()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    c = writer.counts()
    assert c["dropped"] >= 5 * CHUNK - 10 and c["written"] == 0
    accounted(c, 5 * CHUNK)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("dropped since the last report" in m for m in messages) == 1
    assert sum("failed (attempt" in m and "database is locked" in m for m in messages) == 1
    assert SECRET_ITEM not in caplog.text


WORKER = textwrap.dedent("""
    import os, signal, sys
    from basketry.monitoring import MonitorSettings
    from basketry.monitoring.process_writer import CHUNK, ProcessWriter
    s = MonitorSettings(capture=True, db=sys.argv[1], max_delay=30.0, batch_size=2000)
    writer = ProcessWriter(s).start()
    for i in range(3 * CHUNK):  # whole chunks: sent, held in the process's queue (max_delay)
        writer.offer_row((1.7e9 + i, f"r{i}", "v1", "single", ["a"], ["b"], 1, 0, 0.1))
    assert "sqlalchemy" not in sys.modules, "the worker imported SQLAlchemy"
    print(writer._proc.pid, flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_the_process_writes_what_it_holds_and_exits_when_its_worker_is_killed(
        tmp_path: Path) -> None:
    s = settings(tmp_path)
    worker = subprocess.Popen([sys.executable, "-c", WORKER, s.url()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdin is not None
    child = int(worker.stdout.readline())
    assert alive(child)
    time.sleep(0.3)  # the chunks reach the process
    worker.stdin.write("\n")
    worker.stdin.flush()
    assert worker.wait(30) == -signal.SIGKILL
    deadline = time.monotonic() + s.shutdown_timeout + 10
    while alive(child):
        assert time.monotonic() < deadline, "the writer process outlived its worker"
        time.sleep(0.05)
    assert count(s) == 3 * CHUNK


def test_close_gives_up_on_a_hung_store_at_the_deadline_and_counts_what_is_left(
        tmp_path: Path) -> None:
    import sqlite3

    # the store waits up to 60 s for its lock at each write: longer than the deadline
    s = settings(tmp_path, connect_timeout=60, write_retries=0, max_delay=0.05)
    writer = ProcessWriter(s).start()
    lock = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(3 * CHUNK):
            writer.offer_row(row(i))
        time.sleep(0.3)  # a batch is in the store's hands, stuck behind the lock
        writer.close(0.5)  # returns: a hang here would never end
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    c = writer.counts()
    assert c["lost_at_shutdown"] >= 1 and c["written"] == 0
    accounted(c, 3 * CHUNK)
    assert writer._proc is not None and writer._proc.poll() is not None


def test_every_event_reaches_the_store_on_each_backend(store_url: str, tmp_path: Path) -> None:
    s = settings(tmp_path, db=store_url, max_delay=5.0)
    writer = ProcessWriter(s).start()
    n = 2 * CHUNK + 5
    for i in range(n):
        writer.offer_row(row(i))
    writer.close()
    assert writer.counts()["written"] == n
    store = MonitorStore(store_url)
    try:
        events = store.read_events()
    finally:
        store.close()
    assert sorted(e.request_id for e in events) == sorted(f"req-{i}" for i in range(n))
    assert all(e.basket[0] == SECRET_ITEM and len(e.returned) == 2 for e in events)
