"""Writing ``Baskets`` back to the file layouts the readers accept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from basketry.data.baskets import Baskets

WRITE_FORMATS = ("long-parquet", "long-csv", "basket")


def _long_table(baskets: Baskets) -> pa.Table:
    """One row per (basket, item); items as a dictionary column so strings are stored once."""
    basket_of_entry = np.repeat(np.arange(baskets.n_baskets, dtype=np.int64), baskets.sizes)
    if baskets.basket_ids is not None:
        transaction = pa.DictionaryArray.from_arrays(
            pa.array(basket_of_entry.astype(np.int32)), pa.array(baskets.basket_ids, pa.string())
        )
    else:
        transaction = pa.array(basket_of_entry)
    columns = {
        "transaction": transaction,
        "item": pa.DictionaryArray.from_arrays(
            pa.array(baskets.indices), pa.array(baskets.items, pa.string())
        ),
    }
    if baskets.timestamps is not None:
        columns["timestamp"] = pa.array(baskets.timestamps[basket_of_entry])
    if baskets.customers is not None:
        columns["customer"] = pa.array(baskets.customers[basket_of_entry], pa.string())
    return pa.table(columns)


def _quoted(item: str) -> str:
    if '"' in item or any(c.isspace() for c in item):
        return '"' + item.replace('"', '""') + '"'
    return item


def write_baskets(baskets: Baskets, path: str | os.PathLike[str], format: str) -> Path:
    """Write ``baskets`` as ``long-parquet``, ``long-csv`` (columns transaction, item[,
    timestamp, customer]) or ``basket`` (one basket per line, items separated by spaces; an
    item holding whitespace or a quote is quoted, its quotes doubled, as the reader expects)."""
    target = Path(path)
    if format not in WRITE_FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {WRITE_FORMATS}")
    if format == "basket":
        items = np.asarray([_quoted(x) for x in baskets.items], dtype=object)
        with open(target, "w", encoding="utf-8") as fh:
            step = 100_000
            for lo in range(0, baskets.n_baskets, step):
                hi = min(lo + step, baskets.n_baskets)
                ptr = baskets.indptr[lo : hi + 1]
                words = items[baskets.indices[ptr[0] : ptr[-1]]]
                fh.writelines(
                    " ".join(words[a - ptr[0] : b - ptr[0]]) + "\n"
                    for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist(), strict=True)
                )
        return target
    table = _long_table(baskets)
    if format == "long-parquet":
        pq.write_table(table, target, compression="zstd")
    else:
        import pyarrow.csv as pacsv

        plain = table.cast(pa.schema([
            pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
            for f in table.schema
        ]))
        pacsv.write_csv(plain, target)
    return target
