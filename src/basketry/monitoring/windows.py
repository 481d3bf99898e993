"""Time windows of the online measures: hour, day, week (UTC, weeks from Monday), or N orders.

A time window is ``[start, start + width)`` with ``start`` a multiple of the width from an
origin (the epoch; weeks from Monday 1970-01-05), so a window is an integer division of a
time in microseconds, the same in Python and in SQL on either backend, and a window computed
once keeps its identity (its start) forever: closed windows can be stored and reused.
A window of N orders is the orders taken N at a time, oldest first, from the start of the
period asked for; its bounds are its first and last order's times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

US = 1_000_000
HOUR_US = 3_600 * US
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
#: Windows of whole time units: their width and their origin (Monday 1970-01-05 for weeks).
TIME_WINDOWS = {"hour": (HOUR_US, 0), "day": (DAY_US, 0), "week": (WEEK_US, 4 * DAY_US)}
#: How far back a report looks when no start is given: two days of hours, a month of days,
#: twelve weeks; windows of N orders look back a month.
DEFAULT_SPAN_US = {"hour": 2 * DAY_US, "day": 30 * DAY_US, "week": 12 * WEEK_US,
                   "orders": 30 * DAY_US}
#: At most this many orders per window of N orders (a bounded query set per window).
MAX_WINDOW_ORDERS = 10_000_000


class WindowError(ValueError):
    """A window that cannot be: one line naming the value."""


@dataclass(frozen=True)
class Window:
    """``hour``, ``day``, ``week`` (``width_us``, ``origin_us``) or ``orders`` (``n_orders``)."""

    name: str
    width_us: int = 0
    origin_us: int = 0
    n_orders: int = 0

    @classmethod
    def parse(cls, text: str) -> Window:
        """``hour``, ``day``, ``week``, or a number of orders (``500`` or ``500-orders``)."""
        value = str(text).strip().lower()
        if value in TIME_WINDOWS:
            width, origin = TIME_WINDOWS[value]
            return cls(value, width_us=width, origin_us=origin)
        match = re.fullmatch(r"(\d+)(?:[ _-]?orders?)?", value)
        if match is None:
            raise WindowError(f"window {text!r}: expected hour, day, week or a number of "
                              "orders (such as 1000)")
        n = int(match.group(1))
        if not 1 <= n <= MAX_WINDOW_ORDERS:
            raise WindowError(f"window {text!r}: the number of orders must be between 1 and "
                              f"{MAX_WINDOW_ORDERS:,}")
        return cls("orders", n_orders=n)

    @property
    def timed(self) -> bool:
        return self.n_orders == 0

    @property
    def label(self) -> str:
        return self.name if self.timed else f"{self.n_orders} orders"

    def start_of(self, time_us: int) -> int:
        """Start of the time window holding ``time_us``."""
        return (time_us - self.origin_us) // self.width_us * self.width_us + self.origin_us

    def starts(self, times_us: np.ndarray) -> np.ndarray:
        """Start of the time window of each time (vectorised :meth:`start_of`)."""
        t = np.asarray(times_us, dtype=np.int64)
        return (t - self.origin_us) // self.width_us * self.width_us + self.origin_us

    def default_span_us(self) -> int:
        return DEFAULT_SPAN_US[self.name]


def iso(time_us: int) -> str:
    """A time in microseconds as ISO 8601 UTC to the second (``2026-11-01T00:00:00Z``)."""
    return datetime.fromtimestamp(time_us // US, UTC).isoformat().replace("+00:00", "Z")


def runs(starts: list[int], width: int) -> list[tuple[int, int]]:
    """Contiguous runs of window starts, as ``[a, b)`` time ranges (one query per run)."""
    out: list[tuple[int, int]] = []
    for s in starts:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], s + width)
        else:
            out.append((s, s + width))
    return out
