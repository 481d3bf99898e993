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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar.params import Parameter

from basketry.monitoring.catalog import ModelCatalog, model_directories, registry_roots
from basketry.monitoring.windows import Window, WindowError
from basketry.serving.capture import Capture, CaptureError
from basketry.serving.errors import ApiError
from basketry.serving.state import Snapshot

#: Longest a report may take before the request answers 503 (the thread finishes its work).
REPORT_TIMEOUT = 60.0

# The period of every report endpoint (the performance, the page's data), declared once.
WindowQuery = Annotated[str, Parameter(description="hour, day, week (UTC, weeks from "
                                       "Monday) or a number of orders (1000).")]
SinceQuery = Annotated[str | None, Parameter(description="ISO 8601 start (UTC unless a zone "
                                             "is given); default: the window's usual span "
                                             "(2 days of hours, 30 days, 12 weeks).")]
UntilQuery = Annotated[str | None, Parameter(description="ISO 8601 end, excluded; default: "
                                             "now.")]
QUERY_FIELDS = ("since", "until", "window", "model_version")

#: What a report computes from the store, the models, the period and the query.
Compute = Callable[[Any, ModelCatalog, Window, float | None, float | None, Mapping[str, str]],
                   dict[str, Any]]


class Reports:
    """Reports read from the monitoring store by one worker (this endpoint's and the
    monitoring page's): the query checked (422 naming the parameter), one report at a time
    (503 ``busy`` at once for a second one), in a thread within ``REPORT_TIMEOUT``, with the
    model this worker serves and the registry's local versions."""

    def __init__(self, capture: Capture, *, fields: tuple[str, ...], what: str) -> None:
        self.capture, self.fields, self.what = capture, fields, what
        self._busy = threading.Lock()

    async def run(self, query: Mapping[str, str], snap: Snapshot | None,
                  compute: Compute) -> dict[str, Any]:
        unknown = sorted(set(query) - set(self.fields))
        if unknown:
            raise ApiError(422, "invalid_parameter", f"unknown parameter `{unknown[0]}`",
                           unknown[0])
        try:
            window = Window.parse(query.get("window") or "day")
        except WindowError as exc:
            raise ApiError(422, "invalid_parameter", str(exc), "window") from None
        since, until = _time(query, "since"), _time(query, "until")
        if not self._busy.acquire(blocking=False):
            raise ApiError(503, "busy", f"another {self.what} is being computed by this "
                           "worker; ask again in a few seconds")
        try:
            work = asyncio.to_thread(self._compute, compute, window, since, until, query,
                                     snap)
            return await asyncio.wait_for(_release_after(work, self._busy), REPORT_TIMEOUT)
        except TimeoutError:
            raise ApiError(503, "timeout", f"the {self.what} took longer than "
                           f"{REPORT_TIMEOUT:g} s; ask for a shorter period or a coarser "
                           "window") from None

    def _compute(self, compute: Compute, window: Window, since: float | None,
                 until: float | None, query: Mapping[str, str],
                 snap: Snapshot | None) -> dict[str, Any]:
        from basketry.monitoring.performance import PerformanceError
        from basketry.monitoring.schema import DamagedRowError
        from basketry.monitoring.store import MonitorStoreError

        try:
            store = self.capture.open_store()
        except CaptureError as exc:  # the monitor extra missing, or the store unusable
            raise ApiError(503, "store_unavailable", str(exc).splitlines()[0]) from None
        served = [snap.model] if snap is not None else []
        catalog = ModelCatalog(model_directories(registry_roots()), models=served)
        try:
            return compute(store, catalog, window, since, until, query)
        except PerformanceError as exc:
            raise ApiError(422, "invalid_parameter", str(exc), exc.field) from None
        except MonitorStoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc).splitlines()[0]) from None
        except DamagedRowError as exc:  # edited by hand: the report cannot be made from it
            raise ApiError(503, "store_damaged", str(exc)) from None


class PerformanceReports:
    """``GET /v1/monitoring/performance`` of one worker."""

    def __init__(self, capture: Capture) -> None:
        self.reports = Reports(capture, fields=QUERY_FIELDS, what="performance report")

    async def report(self, query: Mapping[str, str], snap: Snapshot | None) -> dict[str, Any]:
        return await self.reports.run(query, snap, _performance)


def _performance(store: Any, catalog: ModelCatalog, window: Window, since: float | None,
                 until: float | None, query: Mapping[str, str]) -> dict[str, Any]:
    from basketry.monitoring.performance import performance

    return performance(store, catalog, window=window, since=since, until=until,
                       model_version=query.get("model_version") or None).to_json()


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
