"""The monitoring page: ``GET /monitor`` (HTML), ``GET /monitor/data`` (its JSON document) and
``GET /monitor/assets/plotly.min.js`` (the charting library, from the installed plotly
package: the page works on a closed network).

The document is ``basketry.monitoring.dashboard.dashboard_data``: it reads the monitoring
store and may replay orders, so it runs in a thread, one at a time per worker (a second one
meanwhile answers 503 at once), within ``REPORT_TIMEOUT``, as the performance report does;
the query parameters (``window``, ``since``, ``until``) are read the same way.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from basketry.monitoring.catalog import ModelCatalog, model_directories, registry_roots
from basketry.monitoring.report_html import plotly_js, render_report
from basketry.monitoring.windows import Window, WindowError
from basketry.serving.capture import Capture, CaptureError
from basketry.serving.errors import ApiError
from basketry.serving.openapi import responses
from basketry.serving.performance import REPORT_TIMEOUT, _release_after, _time
from basketry.serving.schemas import ErrorResponse
from basketry.serving.state import ModelHolder, Snapshot

QUERY_FIELDS = ("since", "until", "window")
PLOTLY_PATH = "/monitor/assets/plotly.min.js"
HTML = "text/html; charset=utf-8"


class Dashboard:
    """The page's document for one worker (see the module's docstring)."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self._busy = threading.Lock()

    async def data(self, query: Mapping[str, str], snap: Snapshot | None) -> dict[str, Any]:
        unknown = sorted(set(query) - set(QUERY_FIELDS))
        if unknown:
            raise ApiError(422, "invalid_parameter", f"unknown parameter `{unknown[0]}`",
                           unknown[0])
        try:
            window = Window.parse(query.get("window") or "day")
        except WindowError as exc:
            raise ApiError(422, "invalid_parameter", str(exc), "window") from None
        since, until = _time(query, "since"), _time(query, "until")
        if not self._busy.acquire(blocking=False):
            raise ApiError(503, "busy", "the monitoring page is being computed by this worker "
                           "for another request; ask again in a few seconds")
        try:
            work = asyncio.to_thread(self._compute, window, since, until, snap)
            return await asyncio.wait_for(_release_after(work, self._busy), REPORT_TIMEOUT)
        except TimeoutError:
            raise ApiError(503, "timeout", f"the page took longer than {REPORT_TIMEOUT:g} s; "
                           "ask for a shorter period or a coarser window") from None

    def _compute(self, window: Window, since: float | None, until: float | None,
                 snap: Snapshot | None) -> dict[str, Any]:
        try:
            store = self.capture.open_store()  # one line naming the extra when it is missing
        except CaptureError as exc:
            raise ApiError(503, "store_unavailable", str(exc).splitlines()[0]) from None
        from basketry.monitoring.dashboard import dashboard_data
        from basketry.monitoring.performance import PerformanceError
        from basketry.monitoring.store import MonitorStoreError

        served = [snap.model] if snap is not None else []
        catalog = ModelCatalog(model_directories(registry_roots()), models=served)
        try:
            return dashboard_data(store, catalog, window=window, since=since, until=until)
        except PerformanceError as exc:
            raise ApiError(422, "invalid_parameter", str(exc), exc.field) from None
        except MonitorStoreError as exc:
            raise ApiError(503, "store_unavailable", str(exc).splitlines()[0]) from None


def dashboard_routes(capture: Capture, holder: ModelHolder) -> list[HTTPRouteHandler]:
    """The page, its document and its script."""
    dashboard = Dashboard(capture)

    @get("/monitor/data", tags=["monitoring"],
         summary="The monitoring page's figures (traffic, hit rate, drift, alerts)",
         responses={**responses(422),
                    503: ResponseSpec(ErrorResponse, description="The monitoring store is "
                                      "down, or this worker is computing another page.")})
    async def monitor_data(
        request: Request,
        window: Annotated[str, Parameter(description="hour, day, week (UTC, weeks from "
                                         "Monday) or a number of orders (1000).")] = "day",
        since: Annotated[str | None, Parameter(description="ISO 8601 start (UTC unless a zone "
                                               "is given); default: the window's usual span "
                                               "(2 days of hours, 30 days, 12 weeks).")
                         ] = None,
        until: Annotated[str | None, Parameter(description="ISO 8601 end, excluded; default: "
                                               "now.")] = None,
    ) -> dict[str, Any]:
        """What `GET /monitor` shows, as JSON (the same document as `basketry monitor report
        --output json`): traffic and latency percentiles per window, the online HR@k per
        model version with its offline figure, the drift detectors' results, the top drifting
        items, broken rules and alerts."""
        return await dashboard.data(dict(request.query_params), holder.current)

    @get("/monitor", include_in_schema=False)
    async def monitor_page(request: Request) -> Response[str]:
        try:
            data = await dashboard.data(dict(request.query_params), holder.current)
        except ApiError as exc:
            return Response(_error_page(exc), status_code=exc.status, media_type=HTML)
        page = await asyncio.to_thread(render_report, data, inline_assets=False, live=True,
                                       plotly_url=_plotly_url())
        return Response(page, media_type=HTML, headers={"cache-control": "no-store"})

    @get(PLOTLY_PATH, include_in_schema=False, sync_to_thread=True)  # compressed once
    def plotly_asset(request: Request) -> Response[bytes]:
        source = plotly_js()
        if source is None:
            raise ApiError(404, "not_found", "plotly.js is not installed on this server: "
                           "pip install 'basketry[monitor]'")
        # the page asks for it with its digest in the URL: a new plotly is a new URL
        headers = {"cache-control": "public, max-age=31536000, immutable",
                   "vary": "accept-encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            # 4.6 MB, 1.4 MB compressed: what a phone on a slow network waits for
            return Response(_gzipped(), media_type="text/javascript",
                            headers={**headers, "content-encoding": "gzip"})
        return Response(source, media_type="text/javascript", headers=headers)

    return [monitor_data, monitor_page, plotly_asset]


@cache
def _gzipped() -> bytes:
    source = plotly_js()
    assert source is not None
    return gzip.compress(source, compresslevel=6, mtime=0)


@cache
def _plotly_url() -> str:
    source = plotly_js()
    if source is None:
        return PLOTLY_PATH
    return f"{PLOTLY_PATH}?v={hashlib.sha256(source).hexdigest()[:12]}"


def _error_page(exc: ApiError) -> str:
    import html

    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><title>basketry monitoring</title>'
            '</head><body style="font-family: system-ui, sans-serif; margin: 24px">'
            f'<h1>basketry monitoring</h1><p>{html.escape(str(exc))}</p>'
            '<p><a href="/monitor">Back to the default period</a></p></body></html>')
