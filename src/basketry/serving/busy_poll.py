"""Busy polling: the event loop keeps polling the network for a moment after each request
instead of going to sleep at once.

A worker that sleeps between requests pays for it on the next one: the wake-up (on a virtual
machine, the virtual CPU halts and has to be woken by the host), caches and branch predictors
cooled down by whatever ran meanwhile. Measured with ``bench/serving.py`` on the 2-core
virtual machine basketry is developed on: a worker answering a steady stream of single
requests spent 195-260 µs of CPU on each, where the same worker kept busy by 16 waiting
connections spent 165 µs; at 80% of its peak throughput the wake-ups alone kept it more than
95% busy, and requests queued (p99 in the hundreds of milliseconds).

While a worker polls, ``epoll`` is asked with a zero timeout on every turn of the loop, so a
request that arrives is read at once by a warm process. Polling stops ``window`` seconds after
the last request: an idle service uses no CPU, a loaded one spends its gaps between requests
polling (``top`` shows the worker at 100% while traffic flows). ``BASKETRY_BUSY_POLL_US=0``
turns it off. This is what Linux's own ``net.core.busy_poll`` does for sockets, at the level
of the event loop (loopback and most virtual NICs have no busy-poll support in the kernel).
"""

from __future__ import annotations

import asyncio
import time


class BusyPoll:
    """Keeps one event loop polling for ``window`` seconds after the last :meth:`touch`."""

    __slots__ = ("_last", "_loop", "_polling", "turns", "window")

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float) -> None:
        self._loop = loop
        self.window = window
        self._last = 0.0
        self._polling = False
        #: Turns of the loop spent polling so far (for tests and curiosity).
        self.turns = 0

    @property
    def polling(self) -> bool:
        return self._polling

    def touch(self) -> None:
        """A request arrived: poll (again) until ``window`` seconds from now."""
        self._last = time.perf_counter()
        if not self._polling and self.window > 0:
            self._polling = True
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        # a callback that is ready makes the loop poll without waiting on its next turn
        if time.perf_counter() - self._last < self.window and not self._loop.is_closed():
            self.turns += 1
            self._loop.call_soon(self._turn)
        else:
            self._polling = False
