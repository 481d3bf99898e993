"""The SQL of the online measures: what the store is asked, aggregated in the database.

Each function takes a SQLAlchemy connection and a time range in microseconds and returns
arrays or small lists: counts and sums are aggregated in SQL; the item lists a measure needs
are read for its window only. The same statements run on SQLite and PostgreSQL (plain joins,
``CASE``, integer arithmetic, ``aggregate_strings``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from basketry.monitoring import schema


@dataclass(frozen=True)
class VersionSpan:
    """A model version's first and last recommendation event, and how many it answered."""

    model_version: str
    first_us: int
    last_us: int
    events: int


def version_spans(connection: sa.Connection) -> list[VersionSpan]:
    """Every model version that answered, oldest first (an index-only scan of the
    (model version, time) index)."""
    t = schema.recommendation_events
    rows = connection.execute(
        sa.select(t.c.model_version, sa.func.min(t.c.time_us), sa.func.max(t.c.time_us),
                  sa.func.count()).group_by(t.c.model_version))
    spans = [VersionSpan(str(v), int(a), int(b), int(n)) for v, a, b, n in rows]
    return sorted(spans, key=lambda s: (s.first_us, s.model_version))


@dataclass(frozen=True)
class OrderItems:
    """Orders in a time range, oldest first: order ``o`` is ``pk[o]`` at ``time_us[o]`` with
    items ``items[indptr[o]:indptr[o + 1]]``."""

    pk: np.ndarray
    time_us: np.ndarray
    indptr: np.ndarray
    items: list[str]

    @property
    def n_orders(self) -> int:
        return int(self.pk.shape[0])


#: Joins an order's items in one string (orders refuse control characters in items).
ITEM_SEPARATOR = "\x1f"


def order_items(connection: sa.Connection, start_us: int, end_us: int) -> OrderItems:
    """The items of every order with ``start_us <= time < end_us``: one row per order, its
    items joined in SQL (``string_agg`` / ``group_concat``) and split here, about three times
    less work than a row per item; the items of an order come in no particular order (the
    replay sorts them by the model's ids)."""
    o, oi = schema.orders, schema.order_items
    joined = sa.func.aggregate_strings(oi.c.item, ITEM_SEPARATOR)
    query = (sa.select(o.c.id, o.c.time_us, joined)
             .join(oi, oi.c.order_pk == o.c.id)
             .where(o.c.time_us >= start_us, o.c.time_us < end_us)
             .group_by(o.c.id, o.c.time_us)
             .order_by(o.c.time_us, o.c.id))
    rows = connection.execute(query).all()
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return OrderItems(empty, empty, np.zeros(1, dtype=np.int64), [])
    n = len(rows)
    pk = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    time_us = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
    lists = [r[2].split(ITEM_SEPARATOR) for r in rows]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lists), dtype=np.int64, count=n), out=indptr[1:])
    return OrderItems(pk, time_us, indptr, [item for items in lists for item in items])


@dataclass(frozen=True)
class Attributed:
    """Per (order, model version) of the recommendations an order names as shown to it:
    ``shown`` recommendation events and, per cut-off k (columns in the order of ``ks``),
    ``hit`` events with a bought item among their first k, ``bought`` items among the first k
    that were bought, ``returned`` items among the first k."""

    order_pk: np.ndarray
    time_us: np.ndarray
    model_version: list[str]
    shown: np.ndarray
    hit: np.ndarray  # (n, len(ks))
    bought: np.ndarray
    returned: np.ndarray


def attributed(connection: sa.Connection, start_us: int, end_us: int,
               ks: Sequence[int]) -> Attributed:
    """For the orders with ``start_us <= time < end_us`` that name recommendation requests:
    whether what was recommended was bought, per (order, model version). Two index joins
    bring the shown events' returned lists and the orders' items (only of orders that name a
    request); the comparison, a few items per event, is done here."""
    ks = [int(k) for k in ks]
    o, r, e, oi = (schema.orders, schema.order_requests, schema.recommendation_events,
                   schema.order_items)
    in_range = sa.and_(o.c.time_us >= start_us, o.c.time_us < end_us)
    shown = connection.execute(
        sa.select(o.c.id, o.c.time_us, e.c.model_version, e.c.returned)
        .join(r, r.c.order_pk == o.c.id)
        .join(e, e.c.request_id == r.c.request_id)
        .where(in_range)).all()
    bought: dict[int, set[str]] = {}
    if shown:
        named = sa.exists().where(r.c.order_pk == o.c.id)
        for pk, joined in connection.execute(
                sa.select(o.c.id, sa.func.aggregate_strings(oi.c.item, ITEM_SEPARATOR))
                .join(oi, oi.c.order_pk == o.c.id)
                .where(in_range, named).group_by(o.c.id)):
            bought[int(pk)] = set(joined.split(ITEM_SEPARATOR))
    m = len(ks)
    groups: dict[tuple[int, int, str], list[int]] = {}
    decode = schema.decode_items
    for pk, time_us, version, returned in shown:
        row = groups.setdefault((int(time_us), int(pk), str(version)), [0] * (1 + 3 * m))
        items = decode(returned)
        have = bought.get(int(pk), set())
        hits = [item in have for item in items]
        row[0] += 1
        for j, k in enumerate(ks):
            b = sum(hits[:k])
            row[1 + 3 * j] += b > 0
            row[2 + 3 * j] += b
            row[3 + 3 * j] += min(k, len(items))
    keys = sorted(groups)
    values = np.array([groups[key] for key in keys], dtype=np.int64).reshape(len(keys), 1 + 3 * m)
    return Attributed(
        order_pk=np.array([key[1] for key in keys], dtype=np.int64),
        time_us=np.array([key[0] for key in keys], dtype=np.int64),
        model_version=[key[2] for key in keys],
        shown=values[:, 0],
        hit=values[:, 1::3], bought=values[:, 2::3], returned=values[:, 3::3])


def latest_receipts(connection: sa.Connection, start_us: int, end_us: int, width_us: int,
                    origin_us: int) -> dict[int, int]:
    """Per time window (its start) of the orders in the range, the latest time an order of it
    was received: a stored window computed before that is out of date."""
    statement = sa.text("""
        SELECT (time_us - :origin) / :width AS w, MAX(received_us)
        FROM orders WHERE time_us >= :start AND time_us < :end
        GROUP BY (time_us - :origin) / :width
    """)
    rows = connection.execute(statement, {"origin": origin_us, "width": width_us,
                                          "start": start_us, "end": end_us})
    return {int(w) * width_us + origin_us: int(r) for w, r in rows}


@dataclass(frozen=True)
class StoredWindow:
    kind: str
    model_version: str
    start_us: int
    end_us: int
    n: int
    metrics: dict[str, Any]
    computed_us: int


def stored_windows(connection: sa.Connection, window: str, start_us: int,
                   end_us: int) -> list[StoredWindow]:
    """The windows of ``window`` (``day``...) stored with a start in ``[start_us, end_us)``."""
    t = schema.windows
    rows = connection.execute(
        sa.select(t.c.kind, t.c.model_version, t.c.start_us, t.c.end_us, t.c.n, t.c.metrics,
                  t.c.computed_us)
        .where(t.c.window == window, t.c.start_us >= start_us, t.c.start_us < end_us))
    out = []
    for kind, version, start, end, n, metrics, computed in rows:
        if isinstance(metrics, str):  # a driver that hands JSON back as text
            metrics = json.loads(metrics)
        out.append(StoredWindow(str(kind), str(version), int(start), int(end), int(n),
                                dict(metrics), int(computed)))
    return out


def replace_windows(connection: sa.Connection, window: str, starts: Iterable[int],
                    rows: Sequence[StoredWindow], kinds: Sequence[str]) -> None:
    """Replace the stored windows of ``kinds`` of ``window`` starting at one of ``starts`` by
    ``rows`` (in the caller's transaction: a reader sees the old set or the new one; the
    other kinds sharing the table, such as the page's traffic, are left alone)."""
    t = schema.windows
    starts = sorted(set(starts))
    for i in range(0, len(starts), 500):
        connection.execute(t.delete().where(t.c.window == window, t.c.kind.in_(list(kinds)),
                                            t.c.start_us.in_(starts[i:i + 500])))
    if rows:
        connection.execute(t.insert(), [
            {"kind": r.kind, "model_version": r.model_version, "window": window,
             "start_us": r.start_us, "end_us": r.end_us, "n": r.n, "metrics": r.metrics,
             "computed_us": r.computed_us} for r in rows])


@dataclass(frozen=True)
class EventItems:
    """Recommendation events in a time range, oldest first: event ``e`` answered by
    ``model_version[e]`` at ``time_us[e]``, its basket ``basket_items[basket_ptr[e]:
    basket_ptr[e + 1]]`` and, when rules answered any of it, the items returned
    ``rule_items[rule_ptr[e]:rule_ptr[e + 1]]``: all of them, in rank order, since a scoring
    on one scale (``one_scale``, ``lift_product``) may rank a popular item above a rule's; the
    drift code finds which a rule explains (``drift_concept.explaining_rules``)."""

    time_us: np.ndarray
    model_version: list[str]
    basket_ptr: np.ndarray
    basket_items: list[str]
    rule_ptr: np.ndarray
    rule_items: list[str]

    @property
    def n_events(self) -> int:
        return int(self.time_us.shape[0])


def event_items(connection: sa.Connection, start_us: int, end_us: int) -> EventItems:
    """The baskets asked about and the items answered where rules answered, of every event
    with ``start_us <= time < end_us`` (one index range scan; the item lists decoded here)."""
    e = schema.recommendation_events
    events = connection.execute(
        sa.select(e.c.time_us, e.c.model_version, e.c.n_rules, e.c.basket, e.c.returned)
        .where(e.c.time_us >= start_us, e.c.time_us < end_us)
        .order_by(e.c.id)).all()
    n = len(events)
    decode = schema.decode_items
    baskets = [decode(r[3]) for r in events]
    rules = [decode(r[4]) if r[2] else [] for r in events]

    def csr(lists: list[list[str]]) -> tuple[np.ndarray, list[str]]:
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, lists), dtype=np.int64, count=n), out=ptr[1:])
        return ptr, [item for items in lists for item in items]

    basket_ptr, basket_items = csr(baskets)
    rule_ptr, rule_items = csr(rules)
    return EventItems(np.fromiter((r[0] for r in events), dtype=np.int64, count=n),
                      [str(r[1]) for r in events], basket_ptr, basket_items, rule_ptr,
                      rule_items)


def stored_drift(connection: sa.Connection, start_us: int, end_us: int,
                 width_us: int) -> list[dict[str, Any]]:
    """The drift results stored for the windows of ``width_us`` starting in
    ``[start_us, end_us)`` (a window is its start and its end: an hour and a day may start
    together)."""
    t = schema.drift_results
    rows = connection.execute(
        sa.select(t).where(t.c.start_us >= start_us, t.c.start_us < end_us,
                           t.c.end_us - t.c.start_us == width_us)
        .order_by(t.c.start_us, t.c.feature, t.c.model_version))
    out = []
    for r in rows:
        details = r.details
        if isinstance(details, str):
            details = json.loads(details)
        out.append({"model_version": r.model_version, "start_us": int(r.start_us),
                    "end_us": int(r.end_us), "feature": r.feature, "statistic": r.statistic,
                    "value": float(r.value), "threshold": r.threshold,
                    "drifted": bool(r.drifted), "details": details or {},
                    "computed_us": int(r.computed_us)})
    return out


def replace_drift(connection: sa.Connection, starts: Iterable[int], width_us: int,
                  rows: Sequence[dict[str, Any]], features: Sequence[str] | None = None
                  ) -> None:
    """Replace the stored drift results (of ``features``, default all) of the windows of
    ``width_us`` starting at ``starts`` by ``rows`` (in the caller's transaction)."""
    t = schema.drift_results
    starts = sorted(set(starts))
    for i in range(0, len(starts), 500):
        where = [t.c.start_us.in_(starts[i:i + 500]), t.c.end_us - t.c.start_us == width_us]
        if features is not None:
            where.append(t.c.feature.in_(list(features)))
        connection.execute(t.delete().where(*where))
    if rows:
        connection.execute(t.insert(), list(rows))
