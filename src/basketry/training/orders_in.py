"""Completed orders from a transaction file, for shops that export their orders in batches
(``basketry monitor ingest``): one order per basket, read by the same readers, validation and
presets as training, then checked as the monitoring store checks every order.

An order's id is the basket's transaction id, its time the basket's timestamp (the earliest of
its rows; the readers keep times as UTC, a time without zone in the file being read as UTC),
its items the basket's, its customer the basket's customer if the file names one (the store
keys it with an HMAC, or drops it when no key is configured).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from basketry.data import Baskets, DataError
from basketry.monitoring.orders import Order, parse_order

#: How often (in orders) the check reports its progress.
PROGRESS_EVERY = 10_000


def orders_from_baskets(baskets: Baskets,
                        progress: Callable[[int, int], None] | None = None) -> list[Order]:
    """Every basket of ``baskets`` as a validated :class:`Order`. A file without timestamps or
    transaction ids is a :class:`DataError`; an order the store would refuse is an
    :class:`~basketry.monitoring.OrderError` naming its transaction. Nothing is stored here."""
    source = baskets.source or "the data"
    if baskets.report.get("format") == "basket":
        raise DataError(f"{source}: basket lines carry no order ids or times: ingest a long "
                        "table (CSV or Parquet) naming its columns with --transaction-col and "
                        "--timestamp-col")
    if baskets.timestamps is None:
        raise DataError(f"{source}: no timestamps, and an order needs its time: name the file's "
                        "time column with --timestamp-col (or a preset that has one)")
    if baskets.basket_ids is None:
        raise DataError(f"{source}: no transaction ids, and an order needs its id: ingest a long "
                        "table (CSV or Parquet) naming its id column with --transaction-col")
    nanos = baskets.timestamps.astype("datetime64[ns]").astype(np.int64)
    missing = np.flatnonzero(nanos == np.iinfo(np.int64).min)
    if missing.size:
        raise DataError(f"{source}: transaction {baskets.basket_ids[missing[0]]} has no "
                        f"timestamp ({missing.size:,} of {baskets.n_baskets:,} have none)")
    seconds = (nanos / 1e9).tolist()
    ids = baskets.basket_ids.tolist()
    customers = (baskets.customers.tolist() if baskets.customers is not None
                 else [None] * baskets.n_baskets)
    names = [str(item) for item in baskets.items.tolist()]
    indptr, indices = baskets.indptr.tolist(), baskets.indices.tolist()
    total = baskets.n_baskets
    orders = []
    for b in range(total):
        customer = customers[b]
        order = {"order_id": str(ids[b]), "time": seconds[b],
                 "items": [names[i] for i in indices[indptr[b]:indptr[b + 1]]],
                 "customer": None if customer is None else str(customer)}
        orders.append(parse_order(order, field=f"{source}: transaction {ids[b]}"))
        if progress is not None and (b + 1) % PROGRESS_EVERY == 0:
            progress(b + 1, total)
    if progress is not None:
        progress(total, total)
    return orders
