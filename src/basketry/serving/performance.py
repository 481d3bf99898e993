"""``GET /v1/monitoring/performance``: the online performance, as ``basketry monitor
performance --output json`` computes it (``basketry.monitoring.performance``).

The report reads the monitoring store and may replay orders, which takes up to seconds: it
runs in a thread, one report at a time per worker (a second one meanwhile answers 503 at
once rather than piling up work), within ``REPORT_TIMEOUT``. Replays use the model this
worker serves and every version in the registry's local artifacts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from basketry.monitoring.catalog import ModelCatalog, model_directories, registry_roots
from basketry.monitoring.windows import Window, WindowError
from basketry.serving.capture import Capture, CaptureError
from basketry.serving.errors import ApiError
from basketry.serving.state import Snapshot

#: Longest a report may take before the request answers 503 (the thread finishes its work).
REPORT_TIMEOUT = 60.0
QUERY_FIELDS = ("since", "until", "window", "model_version")


class PerformanceReports:
    """Reports of one worker (see the module's docstring)."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self._busy = threading.Lock()

    async def report(self, query: Mapping[str, str], snap: Snapshot | None) -> dict[str, Any]:
        unknown = sorted(set(query) - set(QUERY_FIELDS))
        if unknown:
            raise ApiError(422, "invalid_parameter", f"unknown parameter `{unknown[0]}`",
                           unknown[0])
        try:
            window = Window.parse(query.get("window", "day"))
        except WindowError as exc:
            raise ApiError(422, "invalid_parameter", str(exc), "window") from None
        since, until = _time(query, "since"), _time(query, "until")
        version = query.get("model_version") or None
        if not self._busy.acquire(blocking=False):
            raise ApiError(503, "busy", "another performance report is being computed by this "
                           "worker; ask again in a few seconds")
        try:
            work = asyncio.to_thread(self._compute, window, since, until, version, snap)
            return await asyncio.wait_for(_release_after(work, self._busy), REPORT_TIMEOUT)
        except TimeoutError:
            raise ApiError(503, "timeout", f"the report took longer than {REPORT_TIMEOUT:g} s; "
                           "ask for a shorter period or a coarser window") from None

    def _compute(self, window: Window, since: float | None, until: float | None,
                 version: str | None, snap: Snapshot | None) -> dict[str, Any]:
        from basketry.monitoring.performance import PerformanceError, performance
        from basketry.monitoring.store import MonitorStoreError

        try:
            store = self.capture.open_store()
        except CaptureError as exc:
            raise ApiError(503, "store_unavailable", str(exc)) from None
        served = [snap.model] if snap is not None else []
        catalog = ModelCatalog(model_directories(registry_roots()), models=served)
        try:
            return performance(store, catalog, window=window, since=since, until=until,
                               model_version=version).to_json()
        except PerformanceError as exc:
            raise ApiError(422, "invalid_parameter", str(exc), exc.field) from None
        except MonitorStoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc).splitlines()[0]) from None


async def _release_after(work: Any, lock: threading.Lock) -> Any:
    # the lock is released when the thread's work ends, also after a timeout gave up on it
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda _t: lock.release())
    return await asyncio.shield(task)


def _time(query: Mapping[str, str], name: str) -> float | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "invalid_parameter", f"`{name}`: {text[:64]!r} is not an ISO 8601 "
                       "date or time (2026-11-01, 2026-11-01T08:00:00Z)", name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
