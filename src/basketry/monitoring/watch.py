"""The monitoring cycle on a schedule: online performance, drift, alerts.

One cycle computes the online performance (closed windows stored once), the drift of every
window of the period (likewise), and hands both to the alerts, which open, hold or resolve
one alert per condition and post them to the webhook. ``basketry monitor watch`` runs cycles
every ``interval`` seconds until it is stopped (SIGTERM, Ctrl-C: the cycle in progress ends
cleanly, nothing half-written: each window's results are stored in one transaction).

Several watchers (two machines, or a watcher started twice) are harmless: stored windows are
replaced whole and an alert's opening and resolution are decided by the store (one open alert
per condition). On one machine, :func:`watch_lock` keeps a second watcher from doing the same
work twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basketry.monitoring.drift import DriftSettings, drift
from basketry.monitoring.drift_types import DriftResult
from basketry.monitoring.performance import performance
from basketry.monitoring.windows import US, Window

if TYPE_CHECKING:
    from basketry.monitoring.alerts import Alert, Alerts
    from basketry.monitoring.catalog import Models
    from basketry.monitoring.store import MonitorStore

log = logging.getLogger("basketry.monitoring.watch")

#: A version whose last recommendation is older than this is no longer serving: its open
#: alerts are resolved (retired).
SERVING_RECENCY_US = 2 * 86_400 * US


@dataclass(frozen=True)
class Cycle:
    """What one cycle did."""

    performance_windows: int
    drift_results: int
    drifted: int
    opened: int
    resolved: int
    seconds: float
    #: the alerts this cycle opened (what a retrain on alert reacts to)
    opened_alerts: tuple[Alert, ...] = ()
    #: every drift result of the cycle's span, as the detectors gave it
    drift: tuple[DriftResult, ...] = ()

    def line(self) -> str:
        return (f"monitoring cycle: {self.performance_windows} performance windows, "
                f"{self.drift_results} drift results ({self.drifted} drifted), alerts "
                f"{self.opened} opened and {self.resolved} resolved, in {self.seconds:.1f} s")


def as_result(row: dict[str, Any]) -> DriftResult:
    """A stored drift row as the detectors produced it."""
    return DriftResult(row["feature"], row["model_version"] or "", row["start_us"],
                       row["end_us"], row["statistic"], row["value"], row["threshold"],
                       row["drifted"], int(row["details"].get("n", 0)), row["details"])


def run_cycle(store: MonitorStore, models: Models, alerts: Alerts | None, *, window: Window,
              settings: DriftSettings | None = None, now: float | None = None) -> Cycle:
    """One cycle over the window's usual span up to ``now``."""
    from basketry.monitoring.alerts import performance_figures

    started = time.perf_counter()
    now = time.time() if now is None else now
    perf = performance(store, models, window=window, now=now)
    report = drift(store, models, window=window, now=now, settings=settings)
    opened: list[Alert] = []
    resolved = 0
    if alerts is not None:
        recent = {v for v, info in perf.versions.items() if _recent(info, now)}
        # only the versions still serving are judged: an older one's windows stay in the span
        # for weeks, and would open again the alerts its retirement resolved
        judged = [r for r in [as_result(r) for r in report.results] + performance_figures(perf)
                  if not r.model_version or not recent or r.model_version in recent]
        changed = alerts.evaluate(judged, round(now * US))
        opened = [a for a in changed if a.open]
        resolved = len(changed) - len(opened)
        if recent:
            resolved += len(alerts.retire_versions(sorted(recent), round(now * US)))
    return Cycle(len(perf.cells), len(report.results), len(report.drifted), len(opened),
                 resolved, time.perf_counter() - started, tuple(opened),
                 tuple(as_result(r) for r in report.results))


def _recent(info: dict[str, Any], now: float) -> bool:
    from datetime import datetime

    last = datetime.fromisoformat(info["last_seen"].replace("Z", "+00:00")).timestamp()
    return (now - last) * US <= SERVING_RECENCY_US


def run_forever(cycle: Callable[[], Cycle], interval: float, stop: threading.Event,
                on_error: Callable[[BaseException], None]) -> None:
    """Run ``cycle`` every ``interval`` seconds (from each start) until ``stop`` is set; a
    failing cycle is reported and the next one runs on time (a store down for an hour does
    not end the watcher)."""
    while not stop.is_set():
        began = time.monotonic()
        try:
            log.info(cycle().line(), extra={"event": "monitor_cycle"})
        except Exception as exc:  # reported, never the end of the watcher
            on_error(exc)
        stop.wait(max(0.0, interval - (time.monotonic() - began)))


@contextmanager
def watch_lock(path: Path) -> Iterator[bool]:
    """Try to be the one watcher on this machine: yields ``True`` holding the lock, ``False``
    when another process holds it (the kernel frees it when its holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield True
    finally:
        os.close(fd)
