"""The request middleware: request ids, the access log line and request metrics for every
request, and the application's fast path of the recommendation endpoints.

A plain ASGI layer rather than framework middleware: it costs a few microseconds. It is also
what the HTTP protocol talks to (:class:`~basketry.serving.contracts.FastApp`): when the
protocol answers a fast-path request itself it asks this layer for the answer and the
bookkeeping, so a request is counted and logged the same on every path.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from basketry.serving.contracts import (
    CLIENT_CLOSED,
    CLIENT_LEFT,
    REQUEST_ID,
    REQUEST_TIMEOUT,
    TIMED_OUT,
    FastApp,
    FastHandler,
)
from basketry.serving.cors import cors_of, is_preflight, origin_of
from basketry.serving.encoding import error_document
from basketry.serving.errors import PROBLEM_JSON
from basketry.serving.logs import AccessLog
from basketry.serving.metrics import Metrics
from basketry.serving.settings import Settings
from basketry.serving.state import ModelHolder

if TYPE_CHECKING:  # the framework is the wrapped application's business, not this layer's
    from litestar import Litestar
    from litestar.datastructures import State

log = logging.getLogger("basketry.serving")

_KNOWN_PATHS = frozenset({
    "/v1/recommendations", "/v1/recommendations/batch", "/v1/model", "/v1/admin/reload",
    "/v1/orders", "/v1/monitoring/performance", "/v1/layout", "/monitor", "/monitor/data",
    "/healthz", "/readyz", "/metrics", "/openapi.json",
})

_JSON = b"application/json"
_PROBLEM = PROBLEM_JSON.encode()

_SAFE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def endpoint_of(path: str) -> str:
    """The metrics label of a path: the route template, never the raw item (bounded labels)."""
    if path in _KNOWN_PATHS:
        return path
    if path.startswith("/v1/items/") and path.endswith("/associations"):
        return "/v1/items/{item}/associations"
    if path.startswith("/v1/layout/items/"):
        return "/v1/layout/items/{item}"
    if path.startswith("/monitor/assets/"):
        return "/monitor/assets"
    if path.startswith("/docs"):
        return "/docs"
    return "other"


class _ClientLeft(Exception):
    """The client closed the connection before the request's body was in."""


class RequestContext(FastApp):
    """ASGI wrapper of the Litestar application (see the module docstring)."""

    def __init__(self, app: Litestar, metrics: Metrics, settings: Settings,
                 holder: ModelHolder, fast_routes: Mapping[str, FastHandler],
                 access: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.settings = settings
        self.holder = holder
        self.access = access
        self.fast_routes = fast_routes
        self.max_body = settings.max_body_bytes
        self.cors = cors_of(settings.cors_origins)  # None: off
        # request ids made here: a random prefix per process and a counter from a random
        # start, 16 hex digits as before, unique without a system call per request
        self._id_prefix = os.urandom(4).hex()
        self._id_count = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_count) & 0xFFFFFFFF:08x}"

    def request_id(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
        """The request's id (the client's ``x-request-id`` when it is safe, else a new one) and
        its declared body length (-1 when not given)."""
        rid = None
        length = -1
        for name, value in headers:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if 0 < len(candidate) <= 64 and set(candidate) <= _SAFE_ID:
                    rid = candidate
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        return rid or self.new_request_id(), length

    def answer_fast(self, handler: FastHandler, path: str, rid: str, body: bytes | None,
                    start: float) -> tuple[int, bytes]:
        """The whole answer of a fast-path request whose body was read (``None``: larger than
        the limit), counted in the metrics and the access log."""
        status = 500
        try:
            if body is None:
                status, payload = 413, error_document(
                    rid, 413, "body_too_large", f"the body is larger than {self.max_body} bytes")
            else:
                status, payload = handler(body, rid)
            return status, payload
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid})
            raise
        finally:
            self._count(path, "POST", status, rid, start)

    def client_left(self, path: str, rid: str, start: float) -> None:
        """Record a fast-path request whose client left before its body was in."""
        self._count(path, "POST", CLIENT_CLOSED, rid, start)

    def record(self, path: str, method: str, status: int, rid: str, start: float) -> None:
        """Record a request the HTTP protocol answered itself and closed (408: its head or body
        came too slowly; 431: its head was too large)."""
        self._count(path, method, status, rid, start)

    def _count(self, path: str, method: str, status: int, rid: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        endpoint = endpoint_of(path)
        self.metrics.observe_request(endpoint, method, status, elapsed)
        if self.access is not None:
            self.access(rid, method, endpoint, status, elapsed)

    async def __call__(self, scope: Any, receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid, length = self.request_id(scope["headers"])
        scope[REQUEST_ID] = rid
        headers = [(b"x-request-id", rid.encode())]
        path = scope["path"]
        if self.cors is not None:
            origin = origin_of(scope["headers"])
            if is_preflight(scope["method"], scope["headers"]):
                preflight = self.cors.preflight(origin)
                if preflight is not None:
                    await send({"type": "http.response.start", "status": 204,
                                "headers": [*preflight, *headers]})
                    await send({"type": "http.response.body", "body": b""})
                    self._count(path, "OPTIONS", 204, rid, start)
                    return
            headers += self.cors.headers(origin)
        # a request with a query string is the framework's, which refuses unknown parameters
        fast = self.fast_routes.get(path) if scope["method"] == "POST" and not scope[
            "query_string"] else None
        if fast is not None:
            try:
                body = await self._read_body(receive, length)
            except _ClientLeft:  # recorded as the protocol records it: no answer to send
                self._count(path, "POST", _departure(scope), rid, start)
                return
            status, payload = self.answer_fast(fast, path, rid, body, start)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", _JSON if status < 400 else _PROBLEM),
                (b"content-length", str(len(payload)).encode()), *headers]})
            await send({"type": "http.response.body", "body": payload})
            return
        status = 500
        started = False

        async def send_with_id(message: Any) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        async def receive_noting_departure() -> Any:
            message = await receive()
            # a departure before the answer started (after it, the answer was given: a
            # disconnect the application reads then changes nothing)
            if message["type"] == "http.disconnect" and not started:
                scope[CLIENT_LEFT] = True  # for the error handler (see CLIENT_CLOSED)
            return message

        try:
            await self.app(scope, receive_noting_departure, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid})
            raise
        finally:
            self._count(path, scope["method"],
                        _departure(scope) if scope.get(CLIENT_LEFT) else status, rid, start)

    async def _read_body(self, receive: Callable[..., Any], length: int) -> bytes | None:
        """The request body, or None when it is larger than the limit (not read further);
        :class:`_ClientLeft` when the client leaves first."""
        if length > self.max_body:
            return None
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                raise _ClientLeft
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # conveniences for tests and the server
    @property
    def state(self) -> State:
        return self.app.state

    def openapi_schema(self) -> dict[str, Any]:
        return self.app.openapi_schema.to_schema()


def _departure(scope: Any) -> int:
    """The status of a request whose client is gone before its body was in."""
    return REQUEST_TIMEOUT if scope.get(TIMED_OUT) else CLIENT_CLOSED
