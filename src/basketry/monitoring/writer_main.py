"""The writer process: one serving worker's events written to the store, outside the worker.

Started by :class:`~basketry.monitoring.process_writer.ProcessWriter` as
``python -P -m basketry.monitoring.writer_main FD``, FD its end of the socket pair
(:mod:`basketry.monitoring.wire`). It reads the settings, opens and migrates the store and
answers ``READY``, or one line (``FAILED``: the store; ``MISSING``: the monitor extra) and
exits. Then it takes the worker's chunks of events into an :class:`EventWriter` (the same
bounded queue, batches, retries and counters as in a thread, here with an interpreter of its
own), reports its counters when they change and sends its log lines to the worker, which logs
them. It exits when the worker asks it to (``CLOSE``, after writing within the deadline) or
when the worker is gone (the socket's end: it writes what it holds within
``shutdown_timeout``, then exits), so it never outlives its worker by more than that.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from basketry.monitoring import wire
from basketry.monitoring.settings import MonitorSettings
from basketry.monitoring.writer import EventWriter

#: Seconds between two reports of the counters (when they changed).
REPORT_EVERY = 0.25
#: Characters of a log line sent to the worker at most.
LOG_MAX = 8_000
#: The process's niceness, added to the worker's.
NICE = 10


class _Rows:
    """The store, given rows (the worker's tuples) instead of events."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def add_events(self, rows: Sequence[Any]) -> int:
        return int(self.store.add_event_rows(rows))


class _Writer(EventWriter):
    def _report_drops(self) -> None:
        pass  # the worker logs drops: its own (socket full) and these, in one line


class _Forward(logging.Handler):
    """Log records sent to the worker, which logs them with its own handlers and format."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(logging.INFO)
        self.sock = sock

    def emit(self, record: logging.LogRecord) -> None:
        _send(self.sock, wire.LOG, (record.levelno, record.getMessage()[:LOG_MAX]))


def _send(sock: socket.socket, kind: bytes, payload: Any) -> None:
    with contextlib.suppress(OSError):  # the worker is gone: nobody to tell
        sock.send(wire.pack(kind, payload))


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The worker ends this process (CLOSE, or its socket's end). A Ctrl-C or a service stop
    # reaches the whole process group: the worker's shutdown then flushes through us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(args[0]))
    sock.setblocking(True)
    buffer = bytearray(wire.MAX_MESSAGE)
    view = memoryview(buffer)
    n = sock.recv_into(buffer)
    if n == 0:
        return 0
    _, fields = wire.unpack(view[:n])
    settings = MonitorSettings(**fields)
    out = logging.getLogger("basketry.monitoring")
    out.addHandler(_Forward(sock))
    out.setLevel(logging.INFO)
    out.propagate = False
    try:
        from basketry.monitoring.store import MonitorStore, MonitorStoreError
    except ImportError as exc:
        _send(sock, wire.MISSING, "the monitoring store needs the monitor extra (pip install "
              f"'basketry[monitor]'): {exc}")
        return 0
    try:
        store = MonitorStore.from_settings(settings)
        store.migrate()
    except MonitorStoreError as exc:
        _send(sock, wire.FAILED, str(exc))
        return 0
    try:
        return _serve(sock, view, store, settings)
    finally:
        store.close()


def _serve(sock: socket.socket, view: memoryview, store: Any, settings: MonitorSettings) -> int:
    # the worker samples; its flush period and this writer's delay add up to max_delay
    writer = _Writer(_Rows(store), settings.replace(capture=True, sample_rate=1.0,
                                                    max_delay=settings.max_delay / 2)).start()
    received = [0]

    def counts() -> dict[str, int]:
        out = writer.counters.snapshot()
        out["received"], out["pending"] = received[0], writer.pending
        return out

    done = threading.Event()

    def report() -> None:
        last: dict[str, int] = {}
        while not done.wait(REPORT_EVERY):
            now = counts()
            if now != last:
                _send(sock, wire.COUNTS, now)
                last = now

    threading.Thread(target=report, name="basketry-monitor-report", daemon=True).start()
    _send(sock, wire.READY, None)
    # Background work from now on (the start, which the worker waits for, at its priority):
    # when the cores are all busy, the worker's answers come first (this process then falls
    # behind, and its queue's drops are counted); idle cores it uses all.
    with contextlib.suppress(OSError):
        os.nice(NICE)
    try:
        while True:
            n = sock.recv_into(view)
            if n == 0:  # the worker is gone (exited, killed): write what is queued, then exit
                writer.close()
                return 0
            kind, payload = wire.unpack(view[:n])
            if kind == wire.EVENTS:
                received[0] += len(payload)
                writer.offer_many(payload)
            elif kind == wire.FLUSH:
                number, timeout = payload
                writer.flush(timeout)
                _send(sock, wire.FLUSHED, (number, counts()))
            elif kind == wire.CLOSE:
                writer.close(payload)
                _send(sock, wire.CLOSED, counts())
                return 0
    finally:
        done.set()


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stderr.flush()
    # everything is committed and reported: skip the interpreter's finalization (a third of a
    # second with SQLAlchemy loaded), which the worker's shutdown would wait for
    os._exit(code)
