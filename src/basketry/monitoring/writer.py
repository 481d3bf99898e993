"""The background writer: events queued in memory by the request path, written in batches.

The request path (an event loop) calls :meth:`EventWriter.offer`, which never blocks and
never does I/O: it samples, appends to a bounded in-memory queue or, when the queue is full
because the store is slow or down, drops the event and counts it. A thread writes the queue
to the store in batches (``batch_size`` events, or whatever came within ``max_delay``). A
failing store is retried with backoff, counted and logged (at most one line per
``log_interval``), never raised to anyone; a batch that fails ``write_retries`` times is
dropped and counted. :meth:`EventWriter.close` flushes what it can within a deadline.

Logs never hold basket contents: only counts, and the store's error line.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from basketry.monitoring.counters import WriterCounters
from basketry.monitoring.events import RecommendationEvent
from basketry.monitoring.sampling import sampled
from basketry.monitoring.settings import MonitorSettings

log = logging.getLogger("basketry.monitoring")

#: First and longest wait before retrying a failed write (doubling in between).
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 5.0


class EventSink(Protocol):
    def add_events(self, events: Sequence[RecommendationEvent]) -> int: ...


class _Every:
    """True at most once per ``interval`` seconds (rate-limits a log line)."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval, self.clock, self.last = interval, clock, float("-inf")

    def __call__(self) -> bool:
        now = self.clock()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


class EventWriter:
    """Queue and background writer of recommendation events (see the module's docstring)."""

    def __init__(self, store: EventSink, settings: MonitorSettings | None = None, *,
                 counters: WriterCounters | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        s = settings or MonitorSettings()
        self.store = store
        self.settings = s
        self.counters = counters or WriterCounters()
        self._capture, self._rate = s.capture, s.sample_rate
        self._limit, self._batch = s.queue_size, s.batch_size
        self._queue: collections.deque[RecommendationEvent] = collections.deque()
        self._pending: list[RecommendationEvent] = []  # the batch being written
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._clock = clock
        self._log_drops = _Every(s.log_interval, clock)
        self._log_errors = _Every(s.log_interval, clock)
        self._dropped_logged = 0
        self._deadline = float("inf")  # set by close()
        self._thread: threading.Thread | None = None

    # -- the request path ----------------------------------------------------------------

    def offer(self, event: RecommendationEvent) -> bool:
        """Queue ``event``; never blocks. ``False``: not recorded (capture off, sampled
        out, queue full, or closed), counted."""
        if not self._capture or self._stop.is_set():
            return False
        if self._rate < 1.0 and not sampled(event.request_id, self._rate):
            self.counters.add("sampled_out")
            return False
        queue = self._queue
        if len(queue) >= self._limit:
            self.counters.add("dropped")  # the writer thread logs it, not this loop
            return False
        queue.append(event)  # deque.append is atomic: no lock on the hot path
        self._idle.clear()
        if len(queue) >= self._batch:
            self._wake.set()
        return True

    def offer_many(self, events: Sequence[RecommendationEvent]) -> int:
        """Queue ``events`` as :meth:`offer` does each, in one step (the writer process takes
        a worker's chunks this way); how many were queued."""
        if not self._capture or self._stop.is_set():
            return 0
        if self._rate < 1.0:
            kept = [e for e in events if sampled(e.request_id, self._rate)]
            if len(kept) < len(events):
                self.counters.add("sampled_out", len(events) - len(kept))
            events = kept
        queue = self._queue
        room = max(0, self._limit - len(queue))
        if room < len(events):
            self.counters.add("dropped", len(events) - room)
            events = events[:room]
        if not events:
            return 0
        queue.extend(events)
        self._idle.clear()
        if len(queue) >= self._batch:
            self._wake.set()
        return len(events)

    @property
    def pending(self) -> int:
        """Events queued or being written."""
        return len(self._queue) + len(self._pending)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> EventWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="basketry-monitor-writer",
                                            daemon=True)
            self._thread.start()
        return self

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written or given up (``False``: timeout)."""
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop taking events and write what is queued, for ``timeout`` seconds at most
        (default ``shutdown_timeout``); what is left then is counted ``lost_at_shutdown``."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self._deadline = self._clock() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 0.5)
            if self._thread.is_alive():  # stuck in a store call: give up on the queue (the
                self._lose_rest(in_flight=False)  # batch in the call is counted by the thread)
        else:
            self._lose_rest()

    def _lose_rest(self, in_flight: bool = True) -> None:
        left = len(self._queue) + (len(self._pending) if in_flight else 0)
        self._queue.clear()
        if in_flight:
            self._pending = []
        if left:
            self.counters.add("lost_at_shutdown", left)
            log.warning("monitoring: %d events were not written before the shutdown deadline",
                        left)

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                if self._stop.is_set():
                    break
                self._wake.wait(self.settings.max_delay)
                self._wake.clear()
                self._report_drops()
                continue
            if self._stop.is_set() and self._clock() >= self._deadline:
                self._lose_rest()
                break
            self._pending = [self._queue.popleft()
                             for _ in range(min(self._batch, len(self._queue)))]
            self._write(self._pending)
            self._pending = []
            self._report_drops()
        self._idle.set()

    def _write(self, batch: list[RecommendationEvent]) -> None:
        backoff = BACKOFF_FIRST
        for attempt in range(self.settings.write_retries + 1):
            try:
                self.store.add_events(batch)
            except Exception as exc:  # a store failure is counted and logged, never raised
                self.counters.add("write_errors")
                if self._log_errors():
                    log.warning("monitoring: writing %d events failed (attempt %d of %d), "
                                "%d queued: %s", len(batch), attempt + 1,
                                self.settings.write_retries + 1, len(self._queue),
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                wait = backoff
                if self._stop.is_set():
                    wait = min(wait, self._deadline - self._clock())
                    if wait <= 0:
                        break
                if attempt < self.settings.write_retries:
                    self._stop.wait(wait)  # woken early by close(), then bounded by deadline
                backoff = min(backoff * 2, BACKOFF_MAX)
            else:
                self.counters.add("written", len(batch))
                return
        self.counters.add("failed", len(batch))

    def _report_drops(self) -> None:
        dropped = self.counters["dropped"]
        if dropped > self._dropped_logged and self._log_drops():
            log.warning("monitoring: %d events dropped since the last report: the queue of %d "
                        "was full (the store is slow or down)", dropped - self._dropped_logged,
                        self._limit)
            self._dropped_logged = dropped
