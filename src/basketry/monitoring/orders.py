"""Completed orders as the shop sends them, checked before anything is stored.

Every check names the field it refuses (``orders[3].items[2]: ...``) on one line, so the
HTTP endpoint can answer 4xx with that field and an ingest can say which line of a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ORDER_ID = 128
MAX_ITEM = 256
MAX_ITEMS = 10_000
MAX_CUSTOMER = 256
MAX_REQUEST_ID = 128
MAX_REQUEST_IDS = 100
#: The years an order's time may fall in (a time outside is a unit or parsing mistake).
MIN_YEAR, MAX_YEAR = 1990, 2200


class OrderError(ValueError):
    """An order that cannot be stored; ``field`` names what is wrong (``orders[0].items``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Order:
    """A completed order, validated: ``time`` is seconds since the epoch (UTC), ``items`` are
    unique in first-seen order, ``customer`` is the identifier as sent (the store keys it)."""

    order_id: str
    time: float
    items: tuple[str, ...]
    customer: str | None = None
    request_ids: tuple[str, ...] = ()


def parse_orders(orders: Iterable[Order | Mapping[str, Any]], *,
                 field: str = "orders") -> list[Order]:
    """Every order of ``orders`` checked (mappings with the fields of :class:`Order`)."""
    return [parse_order(o, field=f"{field}[{i}]") for i, o in enumerate(orders)]


def parse_order(order: Order | Mapping[str, Any], *, field: str = "order") -> Order:
    """One order checked and normalised, or :class:`OrderError` naming the field."""
    if isinstance(order, Order):
        raw: Mapping[str, Any] = {
            "order_id": order.order_id, "time": order.time, "items": order.items,
            "customer": order.customer, "request_ids": order.request_ids}
    elif isinstance(order, Mapping):
        raw = order
        unknown = set(raw) - {"order_id", "time", "items", "customer", "request_ids"}
        if unknown:
            raise OrderError(f"{field}.{sorted(unknown)[0]}", "unknown field")
    else:
        raise OrderError(field, f"expected an object, not {type(order).__name__}")
    for name in ("order_id", "time", "items"):
        if raw.get(name) is None:
            raise OrderError(f"{field}.{name}", "required")
    order_id = _text(raw["order_id"], f"{field}.order_id", MAX_ORDER_ID)
    when = parse_time(raw["time"], f"{field}.time")
    items = _texts(raw["items"], f"{field}.items", MAX_ITEM, MAX_ITEMS, empty=False)
    customer = raw.get("customer")
    if customer is not None:
        customer = _text(customer, f"{field}.customer", MAX_CUSTOMER)
    requests = raw.get("request_ids")
    request_ids = (() if requests is None else
                   _texts(requests, f"{field}.request_ids", MAX_REQUEST_ID, MAX_REQUEST_IDS,
                          empty=True))
    return Order(order_id, when, items, customer, request_ids)


def parse_time(value: Any, field: str) -> float:
    """Seconds since the epoch of ``value``: an aware ``datetime``, an ISO 8601 string with
    its offset (``Z`` or ``+02:00``), or a number of seconds since the epoch (UTC)."""
    if isinstance(value, bool):
        raise OrderError(field, "expected a time, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise OrderError(field, "not a finite number of seconds")
    else:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise OrderError(field, "not an ISO 8601 time (e.g. 2024-05-01T12:30:00Z)"
                                 ) from None
        if not isinstance(value, datetime):
            raise OrderError(field, f"expected a time, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise OrderError(field, "a time needs its time zone (Z or an offset such as "
                             "+02:00): without it the hour is ambiguous")
        seconds = value.timestamp()
    # clamped to years datetime can hold (1653..2286), all outside the range anyway
    year = datetime.fromtimestamp(min(max(seconds, -1e10), 1e10), UTC).year
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise OrderError(field, f"year {year} is outside {MIN_YEAR}..{MAX_YEAR}")
    return seconds


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise OrderError(field, f"expected a string, not {type(value).__name__}")
    if not value.strip():
        raise OrderError(field, "empty")
    if len(value) > limit:
        raise OrderError(field, f"longer than {limit} characters")
    if not value.isprintable():
        raise OrderError(field, "holds a control character")
    return value


def _texts(values: Any, field: str, limit: int, count: int, *, empty: bool) -> tuple[str, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise OrderError(field, f"expected a list of strings, not {type(values).__name__}")
    if not values and not empty:
        raise OrderError(field, "empty: an order has at least one item")
    if len(values) > count:
        raise OrderError(field, f"more than {count} entries")
    out: dict[str, None] = {}  # unique, first-seen order (an order is a set of items)
    for i, value in enumerate(values):
        out.setdefault(_text(value, f"{field}[{i}]", limit))
    return tuple(out)
