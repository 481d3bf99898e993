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
from collections.abc import Mapping
from functools import cache
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from basketry.monitoring.catalog import ModelCatalog
from basketry.monitoring.report_html import plotly_js, render_report
from basketry.monitoring.windows import Window
from basketry.serving.capture import Capture
from basketry.serving.errors import ApiError
from basketry.serving.openapi import responses
from basketry.serving.performance import Reports, SinceQuery, UntilQuery, WindowQuery
from basketry.serving.schemas import ErrorResponse
from basketry.serving.state import ModelHolder, Snapshot

QUERY_FIELDS = ("since", "until", "window")
PLOTLY_PATH = "/monitor/assets/plotly.min.js"
HTML = "text/html; charset=utf-8"


def _page_data(store: Any, catalog: ModelCatalog, window: Window, since: float | None,
               until: float | None, query: Mapping[str, str]) -> dict[str, Any]:
    from basketry.monitoring.dashboard import dashboard_data

    return dashboard_data(store, catalog, window=window, since=since, until=until)


class Dashboard:
    """The page's document for one worker: the monitoring reports' runner (the query
    checked, one page at a time, in a thread) computing ``dashboard_data``."""

    def __init__(self, capture: Capture) -> None:
        self.reports = Reports(capture, fields=QUERY_FIELDS, what="monitoring page")

    async def data(self, query: Mapping[str, str], snap: Snapshot | None) -> dict[str, Any]:
        return await self.reports.run(query, snap, _page_data)


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
        window: WindowQuery = "day",
        since: SinceQuery = None,
        until: UntilQuery = None,
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
