"""The messages between a serving worker and its writer process, over one socket pair.

A unix ``SOCK_SEQPACKET`` pair: each message is one datagram, whole or not sent at all, so a
non-blocking send either queues a chunk or fails (the chunk dropped and counted), never half
of one. A message is a kind byte and a :mod:`marshal` payload: both ends are the same
interpreter (the worker starts the process with its own executable) and the socket is private
to them, and marshal is the standard library's fastest encoder of tuples, lists, strings and
numbers (about 20 ns an event), building nothing but those.

An event travels as a row: the fields of :class:`~basketry.monitoring.RecommendationEvent`, in
order, as a tuple.
"""

from __future__ import annotations

import marshal
import socket
from typing import Any

# worker -> writer process
SETTINGS = b"S"  # the MonitorSettings fields, the first message
EVENTS = b"E"  # a list of event rows
FLUSH = b"F"  # a number: answer FLUSHED with it once everything sent before is written
CLOSE = b"C"  # seconds: write what is queued within them, answer CLOSED, exit
# writer process -> worker
READY = b"R"  # the store is open and migrated
FAILED = b"X"  # one line: the store cannot be used
MISSING = b"M"  # one line: the monitor extra (SQLAlchemy, alembic) is not installed
COUNTS = b"N"  # the counters (cumulative), sent when they change
LOG = b"L"  # (level, message): a log line of the process, logged by the worker
FLUSHED = b"f"  # (number, counters)
CLOSED = b"c"  # the final counters

#: Socket buffer asked for (the kernel caps it at ``net.core.wmem_max``): the bound on what
#: waits between a worker and its writer process, about 25,000 events at 4 MiB.
BUFFER = 4 << 20
#: The largest message read (a chunk of events is far smaller; one basket of 10,000 long
#: names is about 3 MiB).
MAX_MESSAGE = 8 << 20


def pack(kind: bytes, payload: Any) -> bytes:
    return kind + marshal.dumps(payload)


def unpack(data: bytes | memoryview) -> tuple[bytes, Any]:
    return bytes(data[:1]), marshal.loads(data[1:])


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """The worker's end and the writer process's end (neither inheritable)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (ours, theirs):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    return ours, theirs
