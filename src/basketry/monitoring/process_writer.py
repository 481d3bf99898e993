"""The worker's side of the writer process: events handed over in chunks, never written here.

A serving worker's event loop must not share its interpreter with the store's work (binding
rows, the driver's calls): a writer thread in the worker cost it 41% of its throughput, most of
it the two threads contending for the interpreter's lock. So each worker starts a writer
process (:mod:`basketry.monitoring.writer_main`) and hands it its events:

- :meth:`ProcessWriter.offer_row` (the request path) samples, appends the event's row (a tuple)
  to a chunk under a lock and, every ``CHUNK`` events, sends the chunk as one datagram with a
  non-blocking send (:mod:`basketry.monitoring.wire`): a few microseconds an event, no I/O
  otherwise. A full socket (the process is behind: the bound on memory) or no process drops
  the chunk, counted.
- A thread of the worker, asleep almost all the time, sends what waited longer than half of
  ``max_delay``, reads the process's counters and log lines (logged here, with the worker's
  format) and logs drops at most once per ``log_interval``.
- :meth:`start` waits for the process's ``READY`` or its one line (a store that cannot be
  opened: :class:`WriterStartError`). :meth:`spawn` starts it without waiting, so the store
  opens while the worker loads its model.
- A process that dies is counted (``write_errors``; the events it had not confirmed as
  ``failed``), logged, and started again (after 0.5 s, doubling up to 30 s while it keeps
  dying); meanwhile events are dropped, counted. The worker never fails for it.
- :meth:`close` sends what is left and ``CLOSE`` with the deadline; the process writes within
  it and answers its final counters. A process that does not answer in time is killed, and
  what it had not confirmed is counted ``lost_at_shutdown``. The process also exits by itself
  when the worker is gone (killed): the socket's end.

Every event offered ends in exactly one counter, as with :class:`EventWriter`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import select
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from basketry.monitoring import wire
from basketry.monitoring.counters import OUTCOMES, WriterCounters
from basketry.monitoring.events import RecommendationEvent
from basketry.monitoring.privacy import mask_url
from basketry.monitoring.sampling import sampled
from basketry.monitoring.settings import MonitorSettings
from basketry.monitoring.writer import _Every

log = logging.getLogger("basketry.monitoring")

#: Events per datagram: large enough that sending costs well under a microsecond an event,
#: small enough that the request which sends it is not held up (about 15 us).
CHUNK = 128
#: Seconds to wait for the process to open the store, beyond the store's connect timeout
#: (the interpreter's start and SQLAlchemy's import, on a busy machine).
START_MARGIN = 30.0
#: The largest message read from the process (counters, a log line).
REPLY_MAX = 1 << 16
#: Waits before starting a process that died again (doubling while it keeps dying).
RESTART_FIRST, RESTART_MAX = 0.5, 30.0
#: A process that lived this long before dying was fine: the next wait is the first again.
HEALTHY_SECONDS = 30.0


class WriterStartError(RuntimeError):
    """The writer process cannot write to the store (one line naming it, or the missing
    extra when ``missing_extra``)."""

    def __init__(self, message: str, *, missing_extra: bool = False) -> None:
        super().__init__(message)
        self.missing_extra = missing_extra


class ProcessWriter:
    """Hands a worker's events to its writer process (see the module's docstring)."""

    def __init__(self, settings: MonitorSettings, *, chunk: int = CHUNK,
                 python: str | None = None) -> None:
        s = settings
        self.settings = s
        #: this worker's own counts (sampled out, dropped here) and those of dead processes
        self.counters = WriterCounters()
        self._rate, self._chunk = s.sample_rate, chunk
        self._tick = s.max_delay / 2  # and as long in the process: max_delay in all
        self._python = python or sys.executable
        self._lock = threading.Lock()  # the chunk, the socket and what was sent on it
        self._rows: list[tuple[Any, ...]] = []
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sent = 0  # events sent to the current process
        self._reported: dict[str, int] = {}  # the current process's last counters
        self._count_lock = threading.Lock()
        self._ready = threading.Event()
        self._start_error: WriterStartError | None = None
        self._spawned_at = 0.0
        self._restart_wait = RESTART_FIRST / 2
        self._acked = threading.Condition()
        self._flushed = 0
        self._final: dict[str, int] | None = None
        self._flush_number = 0
        self._closing = not s.capture  # capture off: nothing is taken, no process starts
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_drops = _Every(s.log_interval, time.monotonic)
        self._log_exits = _Every(s.log_interval, time.monotonic)
        self._dropped_logged = 0

    # -- the request path ----------------------------------------------------------------

    def offer_row(self, row: tuple[Any, ...]) -> bool:
        """Take one event's row (:class:`RecommendationEvent`'s fields in order); never
        blocks. ``False``: not taken (closed, or sampled out: counted)."""
        if self._closing:
            return False
        if self._rate < 1.0 and not sampled(row[1], self._rate):
            self.counters.add("sampled_out")
            return False
        with self._lock:
            rows = self._rows
            rows.append(row)
            if len(rows) >= self._chunk:
                self._rows = []
                self._send_rows(rows)
        return True

    def offer(self, event: RecommendationEvent) -> bool:
        """:meth:`offer_row` for an event object."""
        return self.offer_row(tuple(getattr(event, f.name)
                                    for f in dataclasses.fields(RecommendationEvent)))

    def _send_rows(self, rows: list[tuple[Any, ...]]) -> None:
        # under self._lock: the socket and the count of what was sent on it go together
        sock = self._sock
        if sock is None:  # no process (starting again after it died)
            self.counters.add("dropped", len(rows))
            return
        try:
            sock.send(wire.pack(wire.EVENTS, rows))
        except ValueError:  # a row marshal cannot encode (not str, list, tuple, number)
            self.counters.add("dropped", len(rows))
        except BlockingIOError:  # the process is behind: the socket's buffer is the bound
            self.counters.add("dropped", len(rows))
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE and len(rows) > 1:  # huge baskets: halves
                half = len(rows) // 2
                self._send_rows(rows[:half])
                self._send_rows(rows[half:])
            else:  # the process is gone: the thread sees it and starts another
                self.counters.add("dropped", len(rows))
        else:
            self._sent += len(rows)

    def _send_chunk(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            if rows:
                self._send_rows(rows)

    # -- counters ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Every outcome (cumulative, this worker's and its processes') and ``queue_depth``."""
        with self._count_lock:
            out = self.counters.snapshot()
            reported = self._reported
            sent = self._sent
        for outcome in OUTCOMES:
            out[outcome] += reported.get(outcome, 0)
        out["queue_depth"] = (len(self._rows) + reported.get("pending", 0)
                              + max(0, sent - reported.get("received", 0)))
        return out

    @property
    def pending(self) -> int:
        """Events taken and not yet written or given up."""
        return self.counts()["queue_depth"]

    # -- lifecycle -----------------------------------------------------------------------

    def spawn(self) -> ProcessWriter:
        """Start the process (not waiting for it: see :meth:`wait_ready`)."""
        if self._proc is None and not self._closing:
            self._spawn()
            self._thread = threading.Thread(target=self._run, name="basketry-monitor-relay",
                                            daemon=True)
            self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the process has opened the store; :class:`WriterStartError` (one line)
        when it cannot, or does not answer in time."""
        if self._proc is None:  # capture off (or never spawned): nothing to wait for
            return
        if timeout is None:
            timeout = self.settings.connect_timeout + START_MARGIN
        if not self._ready.wait(timeout):
            raise WriterStartError(f"monitoring store {mask_url(self.settings.url())}: the "
                                   f"writer process did not open it within {timeout:g} s")
        if self._start_error is not None:
            raise self._start_error

    def start(self) -> ProcessWriter:
        """:meth:`spawn` and :meth:`wait_ready`."""
        self.spawn().wait_ready()
        return self

    def _spawn(self) -> None:
        ours, theirs = wire.socket_pair()
        try:
            ours.send(wire.pack(wire.SETTINGS, dataclasses.asdict(self.settings)))
            proc = subprocess.Popen(
                [self._python, "-P", "-m", "basketry.monitoring.writer_main",
                 str(theirs.fileno())], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        with self._lock, self._count_lock:
            self._sock, self._proc, self._sent, self._reported = ours, proc, 0, {}
        self._spawned_at = time.monotonic()

    def flush(self, timeout: float) -> bool:
        """Send what is waiting and wait until the process has written (or given up)
        everything sent so far; ``False``: not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._send_chunk()
        sock = self._sock
        if sock is None:
            return False
        with self._acked:
            self._flush_number += 1
            number = self._flush_number
        if not _send_within(sock, wire.pack(wire.FLUSH, (number, timeout)), deadline):
            return False
        with self._acked:
            return self._acked.wait_for(lambda: self._flushed >= number,
                                        max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float | None = None) -> None:
        """Stop taking events; the process writes what it holds within ``timeout`` seconds
        (default ``shutdown_timeout``), then exits; what is left is ``lost_at_shutdown``."""
        if self._closed:
            return
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._closing = True
        with self._lock:
            rows, self._rows = self._rows, []
            sock = self._sock
        if sock is not None and rows and _send_within(sock, wire.pack(wire.EVENTS, rows),
                                                      deadline):
            with self._lock:
                self._sent += len(rows)
            rows = []
        if rows:
            self.counters.add("lost_at_shutdown", len(rows))
        answered = False
        if sock is not None and self._ready.is_set() and self._start_error is None:
            left = max(0.0, deadline - time.monotonic())
            if _send_within(sock, wire.pack(wire.CLOSE, left), deadline):
                with self._acked:  # its own deadline, and its last words' way here
                    answered = self._acked.wait_for(lambda: self._final is not None, left + 1.5)
        self._stop.set()
        if sock is not None:  # wakes the thread from its wait on the socket
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2 if answered else 0.2)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with self._lock, self._count_lock:
            final = self._final if answered and self._final is not None else self._reported
            self._fold(final, lost_as="lost_at_shutdown")
            if self._sock is not None:
                self._sock.close()
            self._sock = None
        self._closed = True
        lost = self.counters["lost_at_shutdown"]
        if lost:
            log.warning("monitoring: %d events were not written before the shutdown deadline",
                        lost)

    def _fold(self, reported: dict[str, int], lost_as: str) -> None:
        """The current process's counters into this worker's; what it was sent and did not
        account for counted ``lost_as``. Under both locks."""
        for outcome in OUTCOMES:
            if reported.get(outcome):
                self.counters.add(outcome, reported[outcome])
        accounted = sum(reported.get(o, 0) for o in
                        ("written", "failed", "dropped", "lost_at_shutdown"))
        if self._sent > accounted:
            self.counters.add(lost_as, self._sent - accounted)
        self._sent, self._reported = 0, {}

    # -- the thread: timed sends, the process's messages, its exits ----------------------

    def _run(self) -> None:
        next_send = time.monotonic() + self._tick
        while not self._stop.is_set():
            try:
                sock = self._sock
                wait = max(0.0, next_send - time.monotonic())
                if sock is None:
                    self._stop.wait(wait)
                else:
                    readable, _, _ = select.select([sock], [], [], wait)
                    if readable:
                        self._receive(sock)
                if time.monotonic() >= next_send:
                    next_send = time.monotonic() + self._tick
                    if not self._closing:
                        self._send_chunk()
                    self._report_drops()
            except Exception:  # the worker must never fail for its monitoring
                log.exception("monitoring: the writer's relay thread failed")
                self._stop.wait(1.0)

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(REPLY_MAX)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._exited(sock)
                return
            try:
                kind, payload = wire.unpack(data)
            except (EOFError, ValueError, TypeError):  # cut short (a huge log line): skipped
                continue
            if kind == wire.COUNTS:
                self._reported = payload
            elif kind == wire.LOG:
                level, message = payload
                log.log(level, "%s", message)
            elif kind == wire.READY:
                self._ready.set()
            elif kind in (wire.FAILED, wire.MISSING):
                self._start_error = WriterStartError(payload,
                                                     missing_extra=kind == wire.MISSING)
                self._ready.set()
            elif kind == wire.FLUSHED:
                number, self._reported = payload
                with self._acked:
                    self._flushed = max(self._flushed, number)
                    self._acked.notify_all()
            elif kind == wire.CLOSED:
                with self._acked:
                    self._final = payload
                    self._acked.notify_all()

    def _exited(self, sock: socket.socket) -> None:
        """The process's end of the socket closed: it exited (or was killed)."""
        if self._closing:  # close() collects its last counters
            self._stop.set()
            return
        proc = self._proc
        code = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(timeout=5)
        with self._lock, self._count_lock:
            if self._sock is not sock:
                return
            self._sock = None
            sock.close()
            before = self.counters["failed"]
            self._fold(self._reported, lost_as="failed")
            lost = self.counters["failed"] - before
            if self._ready.is_set() and self._start_error is None:
                self.counters.add("write_errors")
        if not self._ready.is_set():  # died before it opened the store: start() says so
            self._start_error = WriterStartError(
                f"monitoring store {mask_url(self.settings.url())}: the writer process exited "
                f"with code {code} before it opened the store")
            self._ready.set()
            return
        if self._start_error is not None:
            return  # it could not open the store: start() reported it, nothing to restart
        self._restart(code, lost)

    def _restart(self, code: int | None, lost: int) -> None:
        lived = time.monotonic() - self._spawned_at
        # a process that keeps dying is started again less and less often
        wait = RESTART_FIRST if lived >= HEALTHY_SECONDS else min(self._restart_wait * 2,
                                                                   RESTART_MAX)
        while not self._stop.is_set() and not self._closing:
            self._restart_wait = wait
            if self._log_exits():
                log.error("monitoring: the writer process exited (code %s) after %.0f s; %d "
                          "events it had not written are counted failed; starting it again "
                          "in %.1f s (events meanwhile are dropped, counted)", code, lived,
                          lost, wait)
            if self._stop.wait(wait):
                return
            try:
                self._spawn()
                return
            except OSError as exc:
                log.error("monitoring: starting the writer process failed: %s", exc)
                wait = min(wait * 2, RESTART_MAX)

    def _report_drops(self) -> None:
        dropped = self.counts()["dropped"]
        if dropped > self._dropped_logged and self._log_drops():
            log.warning("monitoring: %d events dropped since the last report: the writer "
                        "process is behind or down (the store is slow or failing)",
                        dropped - self._dropped_logged)
            self._dropped_logged = dropped


def _send_within(sock: socket.socket, data: bytes, deadline: float) -> bool:
    """Send ``data`` on the non-blocking ``sock``, waiting for room until ``deadline``."""
    while True:
        try:
            sock.send(data)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([], [sock], [], left)
        except OSError:
            return False

