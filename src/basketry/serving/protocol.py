"""uvicorn's httptools HTTP/1.1 protocol, writing each response with one system call.

uvicorn writes a response in two ``transport.write`` calls (status line and headers at
``http.response.start``, the body at ``http.response.body``), and uvloop sends each at once:
two ``send`` system calls per response, which on loopback cost more than half of the server's
CPU time per recommendation (measured with py-spy under ``bench/serving.py``). Here the writes
a connection makes during one turn of the event loop are joined and sent together at the end of
that turn (``loop.call_soon``), before the loop waits for the network again: the same bytes, in
the same order, sent no later in any way a client can see, in one system call. Closing the
connection sends what is pending first; aborting it drops it, as a transport does.

It also bounds what slow or idle clients can hold (:class:`GuardedHttpToolsProtocol`): a
request's head and body must come in within ``BASKETRY_HEADER_TIMEOUT`` and
``BASKETRY_BODY_TIMEOUT`` seconds, and a worker keeps at most ``BASKETRY_MAX_CONNECTIONS`` open.

``basketry serve`` runs uvicorn with this protocol (``http=`` of :func:`uvicorn.run`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from basketry.serving.contracts import (
    REQUEST_ID,
    REQUEST_TIMEOUT,
    TIMED_OUT,
    FastApp,
    FastHandler,
    fast_app,
)
from basketry.serving.cors import cors_of
from basketry.serving.encoding import error_document
from basketry.serving.errors import PROBLEM_JSON
from basketry.serving.settings import Settings

log = logging.getLogger("basketry.serving")

_PROBLEM = PROBLEM_JSON.encode()

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


#: What a connection waits for, which sets its deadline (:class:`GuardedHttpToolsProtocol`).
_IDLE, _OPENED, _HEAD, _BODY = 0, 1, 2, 3
_NEVER = float("inf")
#: A request whose head is larger than :data:`MAX_HEAD_BYTES` is answered with this.
HEAD_TOO_LARGE = 431
#: Bytes of a request's head (request line and headers) at most, nginx's default (4 x 8 KiB;
#: h11 allows 16 KiB); a head here is < 1 KiB. Neither llhttp nor uvicorn bounds it: a client
#: streaming headers took 620 MB of the server's memory in 4 s, before any timeout could help.
#: A connection with a head just under it holds about 2.5 times as much (measured).
MAX_HEAD_BYTES = 32 * 1024
#: At most one log line per this many seconds about refused connections (not one per refusal:
#: under a flood of connections that would be a flood of log lines).
REFUSAL_LOG_SECONDS = 60.0


class GuardedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """:class:`CoalescingHttpToolsProtocol` that bounds what slow, idle or oversized clients
    can hold.

    uvicorn times out only idle kept-alive connections: a connection that sent nothing, half
    a request line, or headers and half a body, stayed open for as long as the client liked
    (a slowloris held every file descriptor of the worker), and a head was read without bound.
    Here:

    - a request's head must be in within ``header_timeout`` seconds of its first byte (of the
      connection's opening, for its first request), and its body within ``body_timeout``
      seconds of the end of its head. Past it, the request is answered 408 with
      ``connection: close``, counted and access-logged as the application counts its requests,
      and the connection closed; a connection that has sent nothing is closed without an
      answer, as an idle kept-alive one is. Time the server spends not reading the connection
      (queued requests, answers the client has not taken) or answering the request before on
      it does not count: that wait is not the client's;
    - a head larger than :data:`MAX_HEAD_BYTES` is answered 431, and the connection closed;
    - a worker keeps at most ``max_connections`` connections open: one more is closed as soon
      as it is accepted, and the others keep being served.

    One timer per connection, not per request: each phase (head, body) only stores its
    deadline, and the timer, when it fires, checks it and re-arms itself for the current one;
    it is set again within a request only when a deadline comes before it (a body timeout
    shorter than the head's). The head's size is counted per read, only while a head is
    incomplete at the end of one; it is never over-counted, and a head is refused within one
    read past the limit.
    """

    _refused = 0  # connections refused since the last log line about it (per worker)
    _refused_logged = -REFUSAL_LOG_SECONDS

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # what the protocol asks of the application (basketry's, or a plain stand-in)
        self._app: FastApp = fast_app(self.app) or _PLAIN_APP
        settings = self._app.settings
        self._header_timeout = settings.header_timeout
        self._body_timeout = settings.body_timeout
        self._max_connections = settings.max_connections
        self._phase = _IDLE
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _NEVER  # when the timer fires
        self._head_size = 0  # of the incomplete head; -1: it began in the current read

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self._max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._wait(_OPENED, self._header_timeout)

    def _refuse(self, transport: asyncio.Transport) -> None:
        self.transport = transport  # for connection_lost
        transport.close()
        cls = GuardedHttpToolsProtocol
        cls._refused += 1
        now = self.loop.time()
        if now - cls._refused_logged >= REFUSAL_LOG_SECONDS:
            log.warning("%d connection(s) refused: %d open, BASKETRY_MAX_CONNECTIONS reached",
                        cls._refused, len(self.connections),
                        extra={"event": "connections_refused", "refused": cls._refused})
            cls._refused, cls._refused_logged = 0, now

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timing()
        super().connection_lost(exc)

    def _stop_timing(self) -> None:
        self._phase = _IDLE
        self._timer_at = _NEVER
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase == _HEAD:  # a head is still incomplete after this read
            size = self._head_size
            if size < 0:
                # it began in this read, which may hold the end of the request before: its
                # part of the read is what was parsed of it (less a header cut by the read's end)
                size = len(self.url) + sum(len(n) + len(v) for n, v in self.headers)
            else:
                size += len(data)
            self._head_size = size
            if size > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._refuse_head(HEAD_TOO_LARGE, "head_too_large",
                                  f"the request's head (request line and headers) is larger "
                                  f"than {MAX_HEAD_BYTES} bytes", 0.0)

    def _wait(self, phase: int, timeout: float) -> None:
        """Start waiting for the client: ``phase`` must be over within ``timeout`` seconds.
        (Written out in the per-request callbacks below, which it costs a call to each.)"""
        self._phase = phase
        deadline = self._deadline = self.loop.time() + timeout
        if deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._check_deadline)

    def on_message_begin(self) -> None:
        # a request has begun: the connection is no longer idle. uvicorn disarms the
        # keep-alive timer only when data arrives, which is enough when answers come in later
        # turns; an answer made in the protocol (DirectHttpToolsProtocol) arms it in the
        # middle of a read, and a request that came in the same read would be cut off by it
        # (while its body comes in or it is answered)
        if self.timeout_keep_alive_task is not None:
            self._unset_keepalive_if_required()
        self._head_size = -1
        if self._phase != _OPENED:  # the first request's time runs from the opening
            deadline = self._deadline = self.loop.time() + self._header_timeout
            if deadline < self._timer_at:
                self._arm(deadline)
        self._phase = _HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        deadline = self._deadline = self.loop.time() + self._body_timeout
        if deadline < self._timer_at:
            self._arm(deadline)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._stop_timing()  # the connection is the WebSocket protocol's from now on
        super().handle_websocket_upgrade()

    def _check_deadline(self) -> None:
        self._timer, self._timer_at = None, _NEVER
        phase = self._phase
        if phase == _IDLE or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline:  # the phase changed since the timer was set
            self._arm(self._deadline)
            return
        cycle = self.cycle
        if self.flow.read_paused or (phase == _HEAD and cycle is not None
                                     and not cycle.response_complete):
            # the server is not reading, or still answering the request before this one: the
            # client cannot be late meanwhile, and its time starts again
            self._wait(phase, self._body_timeout if phase == _BODY else self._header_timeout)
        elif phase == _OPENED:  # sent nothing: closed as an idle connection is
            self.transport.close()
        elif phase == _HEAD:
            self._refuse_head(REQUEST_TIMEOUT, "request_timeout",
                              f"the request's head was not complete within "
                              f"{self._header_timeout:g} s", self._header_timeout)
        else:
            self._body_timed_out()

    def _refuse_head(self, status: int, error: str, message: str, seconds: float) -> None:
        """Answer the request whose head is coming in with an error, close the connection, and
        have the application count it (``seconds``: how long it took)."""
        url = self.url.partition(b"?")[0]
        # the method is known once the URL has begun (it comes first)
        method = self.parser.get_method().decode("latin-1") if url else "-"
        rid = self._app.new_request_id()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # the request before it is still being answered: that answer is sent, and the
            # connection closed after it, with nothing more read
            self._stop_timing()
            self.flow.pause_reading()
            cycle.keep_alive = False
        else:
            self._close_with(status, error, message, rid)
        self._app.record(url.decode("latin-1"), method, status, rid,
                         time.perf_counter() - seconds)

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_started:  # answered before its body was in
            self.transport.close()
            return
        # the application is waiting for the body: it sees the client leave, and records the
        # request as timed out (408) instead of as a departure (499)
        cycle.scope[TIMED_OUT] = True  # type: ignore[literal-required]
        self._close_with(REQUEST_TIMEOUT, "request_timeout", self._body_message(),
                         cycle.scope.get(REQUEST_ID, ""))  # type: ignore[call-overload]

    def _body_message(self) -> str:
        return f"the request's body was not complete within {self._body_timeout:g} s"

    def _close_with(self, status: int, error: str, message: str, rid: str) -> None:
        """Answer ``status`` with an error document, and close the connection."""
        payload = error_document(rid, status, error, message)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend((name, b": ", value, b"\r\n"))
        head.append(b"content-type: " + _PROBLEM + b"\r\ncontent-length: %d\r\n"
                    b"x-request-id: %s\r\nconnection: close\r\n\r\n" % (len(payload),
                                                                      rid.encode()))
        head.append(payload)
        self._stop_timing()
        self.transport.write(b"".join(head))
        self.transport.close()


class _PlainApp(FastApp):
    """What the protocol asks of an application that is not basketry's (or is wrapped by
    uvicorn's middleware): the default bounds, no fast path, nothing recorded."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.fast_routes: dict[str, FastHandler] = {}

    def new_request_id(self) -> str:
        return ""

    def request_id(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
        return "", -1

    def answer_fast(self, handler: FastHandler, path: str, rid: str, body: bytes | None,
                    start: float) -> tuple[int, bytes]:
        raise NotImplementedError("no fast path")  # never asked: no fast routes

    def client_left(self, path: str, rid: str, start: float) -> None:
        pass

    def record(self, path: str, method: str, status: int, rid: str, start: float) -> None:
        pass


_PLAIN_APP = _PlainApp()


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


class DirectHttpToolsProtocol(GuardedHttpToolsProtocol):
    """:class:`GuardedHttpToolsProtocol` that answers the service's fast-path requests
    (``POST /v1/recommendations`` and ``/batch``) itself, as the request's last bytes are
    parsed, instead of starting an ASGI task for each.

    Under a steady stream of single requests, uvicorn's per-request machinery (a scope, an
    event, a request-response cycle, a task and its extra turn of the event loop, the ASGI
    messages) cost about as much CPU as scoring the basket. The answer is the same: the
    application's :meth:`~basketry.serving.contracts.FastApp.answer_fast` (checks, scoring,
    metrics, access log) and the head uvicorn would write (status line, its default headers,
    content type and length, request id, ``connection: close`` when the connection ends).
    Everything else goes to uvicorn as before: other paths and methods, ``Expect:
    100-continue``, a request that arrives while an earlier one on the connection is still
    being answered by the application (answers keep their order), and any application that
    is not basketry's (one whose class does not declare
    :class:`~basketry.serving.contracts.FastApp`).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        app = self._app
        self._direct = {path.encode(): (path, handler)
                        for path, handler in app.fast_routes.items()}
        self._max_body = app.settings.max_body_bytes
        self._cors = cors_of(app.settings.cors_origins)  # None: off

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        if type(cycle) is _Answered and not cycle.response_complete:
            # the client left before its body was in: recorded as the application records
            # it on its own paths (status 499, no error), never answered
            self._app.client_left(cycle.path, cycle.rid, cycle.start)
        super().connection_lost(exc)

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
        rid, length = self._app.request_id(self.headers)
        cycle = _Answered(handler, path, rid, length,
                          version != "1.0" and self.parser.should_keep_alive(),
                          time.perf_counter())
        self.cycle = cycle  # type: ignore[assignment]
        self._phase = _BODY  # as GuardedHttpToolsProtocol.on_headers_complete
        deadline = self._deadline = self.loop.time() + self._body_timeout
        if deadline < self._timer_at:
            self._arm(deadline)
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
        self._phase = _IDLE
        if cycle.response_complete:  # answered 413 before the body was read
            return
        chunks = cycle.body
        self._answer(cycle, None if chunks is None else
                     chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        if type(cycle) is not _Answered:
            super()._body_timed_out()
            return
        if cycle.response_complete:  # answered 413 before its body was in
            self.transport.close()
            return
        cycle.response_complete = True  # not a departure (connection_lost)
        self._close_with(REQUEST_TIMEOUT, "request_timeout", self._body_message(), cycle.rid)
        self._app.record(cycle.path, "POST", REQUEST_TIMEOUT, cycle.rid, cycle.start)

    def _answer(self, cycle: _Answered, body: bytes | None) -> None:
        """Write the answer to ``cycle`` (``body`` None: larger than the limit, answered 413
        and the connection closed, since the rest of the body is not read)."""
        if body is None:
            cycle.body = None
            cycle.keep_alive = False
        try:
            status, payload = self._app.answer_fast(cycle.handler, cycle.path, cycle.rid, body,
                                                   cycle.start)
        except Exception:  # logged by answer_fast; answered as uvicorn answers a failed app
            status, payload = 500, b"Internal Server Error"
            cycle.keep_alive = False
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend((name, b": ", value, b"\r\n"))
        head.append(b"content-type: %s\r\ncontent-length: %d\r\nx-request-id: %s\r\n" % (
            b"application/json" if status < 400 else _PROBLEM if status != 500 else
            b"text/plain; charset=utf-8", len(payload), cycle.rid.encode()))
        if self._cors is not None:  # the request's headers are still the parser's
            head.append(self._cors.head_lines(self.headers))
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
