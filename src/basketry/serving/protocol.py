"""uvicorn's httptools HTTP/1.1 protocol, writing each response with one system call.

uvicorn writes a response in two ``transport.write`` calls (status line and headers at
``http.response.start``, the body at ``http.response.body``), and uvloop sends each at once:
two ``send`` system calls per response, which on loopback cost more than half of the server's
CPU time per recommendation (measured with py-spy under ``bench/serving.py``). Here the writes
a connection makes during one turn of the event loop are joined and sent together at the end of
that turn (``loop.call_soon``), before the loop waits for the network again: the same bytes, in
the same order, sent no later in any way a client can see, in one system call. Closing the
connection sends what is pending first; aborting it drops it, as a transport does.

``basketry serve`` runs uvicorn with this protocol (``http=`` of :func:`uvicorn.run`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: Bytes kept back at most: past this, what is pending is sent at once.
MAX_PENDING = 64 * 1024


class CoalescedWrites:
    """A transport that joins the writes of one event-loop turn (see the module docstring);
    everything else is the wrapped transport's."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        pending = self._pending
        if not pending:
            self._loop.call_soon(self._send)
        pending.append(bytes(data))
        if len(data) >= MAX_PENDING or (len(pending) > 2 and
                                        sum(map(len, pending)) >= MAX_PENDING):
            # a large or streamed answer goes out now, under the transport's flow control
            self._send()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _send(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()

    def close(self) -> None:
        self._send()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over :class:`CoalescedWrites`, reading only as fast as the
    client takes its answers.

    uvicorn resumes reading after every response, even while pipelined requests wait behind it
    or the client is not reading its answers: a client that pipelines requests without reading
    the answers made the server read, queue and answer without bound (a gigabyte of memory in
    20 seconds from one connection, measured). Here reading stays paused while requests are
    queued on the connection or its answers are above the transport's high-water mark, and
    resumes when they are sent.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedWrites(transport, self.loop))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # resumes reading and starts the next queued request
        if self.pipeline or self.flow.write_paused:
            self.flow.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        cycle = self.cycle
        if not self.pipeline and (cycle is None or cycle.response_complete):
            self.flow.resume_reading()


class _Answered:
    """What uvicorn's protocol looks at of a request cycle, for a request answered here."""

    __slots__ = ("body", "disconnected", "handler", "keep_alive", "length", "path",
                 "response_complete", "rid", "size", "start")

    def __init__(self, handler: Any, path: str, rid: str, length: int, keep_alive: bool,
                 start: float) -> None:
        self.handler = handler
        self.path = path
        self.rid = rid
        self.length = length
        self.keep_alive = keep_alive
        self.start = start
        self.body: list[bytes] | None = []  # None: larger than the limit
        self.size = 0
        self.response_complete = False
        self.disconnected = False

    @property
    def message_event(self) -> _Answered:  # uvicorn sets it when the connection is lost
        return self

    def set(self) -> None:
        pass


class DirectHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """:class:`CoalescingHttpToolsProtocol` that answers the service's fast-path requests
    (``POST /v1/recommendations`` and ``/batch``) itself, as the request's last bytes are
    parsed, instead of starting an ASGI task for each.

    Under a steady stream of single requests, uvicorn's per-request machinery (a scope, an
    event, a request-response cycle, a task and its extra turn of the event loop, the ASGI
    messages) cost about as much CPU as scoring the basket. The answer is the same: the
    application's :meth:`~basketry.serving.app.RequestContext.answer_fast` (checks, scoring,
    metrics, access log) and the head uvicorn would write (status line, its default headers,
    content type and length, request id, ``connection: close`` when the connection ends).
    Everything else goes to uvicorn as before: other paths and methods, ``Expect:
    100-continue``, a request that arrives while an earlier one on the connection is still
    being answered by the application (answers keep their order), and any application that
    is not basketry's (no ``answer_fast``).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        app = self.app
        routes = getattr(app, "fast_routes", None)
        self._direct = ({path.encode(): (path, handler) for path, handler in routes.items()}
                        if routes and hasattr(app, "answer_fast") and hasattr(app, "request_id")
                        and hasattr(app, "client_left") else {})
        self._max_body = getattr(app, "max_body", 0)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        if type(cycle) is _Answered and not cycle.response_complete:
            # the client left before its body was in: recorded as the application records
            # it on its own paths (status 499, no error), never answered
            self.app.client_left(cycle.path, cycle.rid, cycle.start)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        # a request has begun: the connection is no longer idle. uvicorn disarms the
        # keep-alive timer only when data arrives, which is enough when answers come in later
        # turns; an answer made here arms it in the middle of a read, and a request that came
        # in the same read would be cut off by it (while its body comes in or it is answered)
        self._unset_keepalive_if_required()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        found = None
        # with the client behind on its answers, a request goes to uvicorn, which queues it
        # (answering it here would buffer one more answer); so does one asking for an
        # upgrade: the parser stops after its head and uvicorn takes the connection over (a
        # WebSocket, which reads what uvicorn put in the scope) or answers it as HTTP
        if self._direct and not self.expect_100_continue and not self.flow.write_paused \
                and not self.parser.should_upgrade():
            previous = self.cycle
            if (previous is None or previous.response_complete) and \
                    self.parser.get_method() == b"POST":
                found = self._direct.get(self.url)
        if found is None:
            super().on_headers_complete()
            return
        path, handler = found
        version = self.parser.get_http_version()
        rid, length = self.app.request_id(self.headers)
        cycle = _Answered(handler, path, rid, length,
                          version != "1.0" and self.parser.should_keep_alive(),
                          time.perf_counter())
        self.cycle = cycle  # type: ignore[assignment]
        if length > self._max_body:
            # answered now: a client that declares a gigabyte would otherwise wait for an
            # answer until it had sent all of it
            self._answer(cycle, None)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if type(cycle) is not _Answered:
            super().on_body(body)
            return
        if cycle.body is None or cycle.response_complete:
            return
        cycle.size += len(body)
        if cycle.size > self._max_body:  # a chunked body past the limit: answered at once
            self._answer(cycle, None)
        else:
            cycle.body.append(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if type(cycle) is not _Answered:
            super().on_message_complete()
            return
        if cycle.response_complete:  # answered 413 before the body was read
            return
        chunks = cycle.body
        self._answer(cycle, None if chunks is None else
                     chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _answer(self, cycle: _Answered, body: bytes | None) -> None:
        """Write the answer to ``cycle`` (``body`` None: larger than the limit, answered 413
        and the connection closed, since the rest of the body is not read)."""
        if body is None:
            cycle.body = None
            cycle.keep_alive = False
        try:
            status, payload = self.app.answer_fast(cycle.handler, cycle.path, cycle.rid, body,
                                                   cycle.start)
        except Exception:  # logged by answer_fast; answered as uvicorn answers a failed app
            status, payload = 500, b"Internal Server Error"
            cycle.keep_alive = False
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend((name, b": ", value, b"\r\n"))
        head.append(b"content-type: %s\r\ncontent-length: %d\r\nx-request-id: %s\r\n" % (
            b"application/json" if status != 500 else b"text/plain; charset=utf-8",
            len(payload), cycle.rid.encode()))
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        head.append(payload)
        transport = self.transport
        transport.write(b"".join(head))
        cycle.response_complete = True
        if not cycle.keep_alive:
            transport.close()
        # as uvicorn's own cycle ends: counted for --limit-max-requests, and the connection's
        # keep-alive timeout armed (a client that goes quiet is closed after it)
        self.on_response_complete()
