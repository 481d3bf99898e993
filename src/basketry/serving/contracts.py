"""What the HTTP protocol and the application agree on: :class:`FastApp`, what the protocol
asks of the application, and the keys they leave in a request's ASGI scope.

The protocol (:mod:`basketry.serving.protocol`) answers the fast-path requests itself and
bounds slow clients; for that it needs the application's settings, its fast routes, request
ids and its bookkeeping (metrics, access log). :class:`~basketry.serving.middleware.RequestContext`
declares that it provides them by subclassing :class:`FastApp`; any other application is
served by the protocol without a fast path, with the default bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, cast

from basketry.serving.settings import Settings

#: A fast-path handler: (request body, request id) -> (status, the answer's bytes).
FastHandler = Callable[[bytes, str], tuple[int, bytes]]

#: Scope key: the request's id (set by the middleware, read by the protocol and the handlers).
REQUEST_ID = "basketry.request_id"
#: Scope key: the client left before the application had read the request.
CLIENT_LEFT = "basketry.client_left"
#: Scope key, set by the protocol when it stopped waiting for the request's body
#: (BASKETRY_BODY_TIMEOUT), answered 408 and closed the connection: the application then sees
#: a departure, recorded as the timeout it is.
TIMED_OUT = "basketry.timed_out"
#: The status recorded (metrics, access log) for a request whose client closed the connection
#: before its body was in: nginx's "client closed request". No answer is sent, and it is not
#: a server error (the framework called it one: an error log line and a 500 per departure).
CLIENT_CLOSED = 499
REQUEST_TIMEOUT = 408


class FastApp(Protocol):
    """What the HTTP protocol needs of the application it serves."""

    #: The bounds (head and body timeouts, connections, body size) come from here.
    settings: Settings
    #: Paths answered on the fast path (``POST`` only), with their handlers.
    fast_routes: Mapping[str, FastHandler]

    def new_request_id(self) -> str:
        """A fresh request id."""
        ...

    def request_id(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
        """The request's id (the client's when safe, else a new one) and its declared body
        length (-1 when not given)."""
        ...

    def answer_fast(self, handler: FastHandler, path: str, rid: str, body: bytes | None,
                    start: float) -> tuple[int, bytes]:
        """The answer to a fast-path request whose body was read (``None``: larger than the
        limit), counted; exceptions are logged and raised."""
        ...

    def client_left(self, path: str, rid: str, start: float) -> None:
        """Record a fast-path request whose client left before its body was in."""
        ...

    def record(self, path: str, method: str, status: int, rid: str, start: float) -> None:
        """Record a request the protocol answered itself (408, 431)."""
        ...


def fast_app(app: object) -> FastApp | None:
    """``app`` when its class declares :class:`FastApp` (a look at its classes, not a probe of
    attributes), else ``None``: an application that is not basketry's, or one wrapped by
    uvicorn's middleware."""
    return cast(FastApp, app) if FastApp in type(app).__mro__ else None
