"""The transaction history a retraining learns from: the original data, the completed orders
the monitoring store received since, or both merged, cut to a training window.

Orders the store holds that the data already has (an order id equal to a transaction id: the
same order exported in a file and sent to ``POST /v1/orders``, or ingested) are counted once.
Merging is done on the arrays (one vocabulary, the ids remapped and re-sorted per basket),
never basket by basket in Python for the data's part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from basketry.data import Baskets, DataError

US = 1_000_000


@dataclass(frozen=True)
class Window:
    """The part of the history a model is trained and tested on: baskets with
    ``start < time <= end`` (``start`` None: from the beginning)."""

    start: np.datetime64 | None
    end: np.datetime64

    def describe(self) -> str:
        if np.isnat(self.end):
            return "all of it: no timestamps"
        first = "the beginning" if self.start is None else _iso(self.start)
        return f"{first} to {_iso(self.end)}"


def orders_as_baskets(orders: Sequence[Mapping[str, Any]], source: str) -> Baskets:
    """The store's orders (``MonitorStore.read_orders``) as baskets with their ids and times
    (customers are left out: the store keeps only keyed customer ids, which do not match the
    data's)."""
    base = Baskets.from_lists([o["items"] for o in orders])
    times = np.array([round(float(o["time"]) * US) for o in orders], dtype=np.int64)
    return replace(base, timestamps=(times * 1000).astype("datetime64[ns]"),
                   basket_ids=np.array([str(o["order_id"]) for o in orders], dtype=object),
                   source=source,
                   report={"format": "monitoring-store", "n_baskets": len(orders)})


def merge(data: Baskets, orders: Baskets) -> tuple[Baskets, int]:
    """``data`` and ``orders`` as one history (the data's labels kept), and how many orders
    were already in the data (same id) and left out."""
    duplicates = 0
    if data.basket_ids is not None and orders.basket_ids is not None and orders.n_baskets:
        known = set(data.basket_ids.tolist())
        new = np.array([i not in known for i in orders.basket_ids.tolist()], dtype=bool)
        duplicates = int((~new).sum())
        orders = orders.subset(new)
    if orders.n_baskets == 0:
        return data, duplicates
    if data.timestamps is None or orders.timestamps is None:
        raise DataError(f"{data.source or 'the data'}: no timestamps, so the store's orders "
                        "cannot be placed in its history: give the data's time column "
                        "(--timestamp-col or a preset), or retrain from the data alone "
                        "(--no-orders)")
    vocab = np.unique(np.concatenate([data.items.astype(str), orders.items.astype(str)]))
    vocab = vocab.astype(object)
    parts = []
    for part in (data, orders):
        new_ids = np.searchsorted(vocab.astype(str), part.items.astype(str)).astype(np.int32)
        parts.append(new_ids[part.indices])
    indptr = np.concatenate([data.indptr, orders.indptr[1:] + data.indptr[-1]])
    indices = np.concatenate(parts)
    # ids ascending within each basket, as Baskets requires (a remap can reorder them)
    owner = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    indices = indices[np.lexsort((indices, owner))]
    labels = None
    if data.labels is not None:
        by_item = dict(zip(data.items.tolist(), data.labels.tolist(), strict=True))
        labels = np.array([by_item.get(i) for i in vocab.tolist()], dtype=object)
    ids = None
    if data.basket_ids is not None and orders.basket_ids is not None:
        ids = np.concatenate([data.basket_ids, orders.basket_ids])
    merged = Baskets(
        indptr=indptr.astype(np.int64), indices=indices.astype(np.int32), items=vocab,
        labels=labels, timestamps=np.concatenate([data.timestamps, orders.timestamps]),
        basket_ids=ids, customers=None,
        source=f"{data.source} + {orders.n_baskets:,} orders of the monitoring store",
        report={**data.report, "orders_from_store": orders.n_baskets,
                "orders_already_in_data": duplicates})
    return merged, duplicates


def window_of(baskets: Baskets, days: float | None, until: np.datetime64 | None) -> Window:
    """The training window: the last ``days`` days up to ``until`` (default: the latest
    basket), or the whole history up to ``until`` when ``days`` is None."""
    if days is not None and days <= 0:
        raise ValueError(f"the training window must be a positive number of days, not {days}")
    if baskets.timestamps is None:
        if days is not None or until is not None:
            raise DataError(f"{baskets.source or 'the data'}: no timestamps, so no window of "
                            "days can be cut: give the data's time column (--timestamp-col "
                            "or a preset), or retrain on all of it (no --days, no --until)")
        return Window(None, np.datetime64("NaT"))
    end = np.max(baskets.timestamps) if until is None else np.datetime64(until, "ns")
    start = None if days is None else end - np.timedelta64(round(days * 86_400 * 1e9), "ns")
    return Window(start, end)


def cut(baskets: Baskets, window: Window) -> Baskets:
    """The baskets of ``window`` (all of them without timestamps)."""
    if baskets.timestamps is None:
        return baskets
    keep = baskets.timestamps <= window.end
    if window.start is not None:
        keep &= baskets.timestamps > window.start
    return baskets.subset(keep)


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="s")) + "Z"
