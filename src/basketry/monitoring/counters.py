"""What the writer did with the events offered to it, for the service's metrics.

Plain integers behind one lock: the serving side exports them as Prometheus counters
(``basketry_monitoring_events_total{outcome=...}``) by reading :meth:`snapshot`.
"""

from __future__ import annotations

import threading

#: Every outcome counted, in the order they are reported.
OUTCOMES = (
    "sampled_out",       # not recorded by the sampling rate
    "dropped",           # the queue was full (store slow or down): not recorded
    "written",           # in the store
    "failed",            # given up after the store failed every retry of their batch
    "lost_at_shutdown",  # still queued when the shutdown deadline passed
    "write_errors",      # failed write attempts (a batch may fail several times)
)


class WriterCounters:
    """Thread-safe counters of :data:`OUTCOMES`."""

    __slots__ = ("_lock", "_values")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(OUTCOMES, 0)

    def add(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self._values[outcome] += n

    def __getitem__(self, outcome: str) -> int:
        return self._values[outcome]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
