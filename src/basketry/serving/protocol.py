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
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
    """uvicorn's httptools protocol over :class:`CoalescedWrites`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedWrites(transport, self.loop))  # type: ignore[arg-type]


#: The import string uvicorn is given.
HTTP_PROTOCOL = "basketry.serving.protocol:CoalescingHttpToolsProtocol"
