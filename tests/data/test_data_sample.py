"""The bundled Online Retail sample."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from basketry.data import fingerprint, profile, read_baskets, sample_path


def test_sample_file():
    path = sample_path()
    assert path.is_file()
    assert path.stat().st_size <= 1_500_000
    assert (path.parent / "README.md").is_file()
    schema = pq.read_schema(path)
    assert schema.names == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                            "UnitPrice", "CustomerID", "Country"]


def test_sample_reads_with_filters_showing():
    b = read_baskets(sample_path())
    r = b.report
    assert r["preset"] == "online-retail"
    assert r["rows_read"] == 247_034
    assert r["dropped_cancelled"] > 0 and r["dropped_nonpositive_quantity"] > 0
    assert b.n_baskets == 8_798 and b.n_items == 3_325
    assert not any(x.startswith("C") for x in b.basket_ids)
    assert b.labels is not None and b.customers is not None
    span = b.timestamps.max() - b.timestamps.min()
    assert span > np.timedelta64(120, "D")
    # enough data for rules: frequent items and pairs
    assert int((b.item_counts() >= 0.02 * b.n_baskets).sum()) >= 50


def test_sample_is_a_slice_of_the_shared_file(shared_data):
    full = read_baskets(shared_data / "online_retail.parquet")
    sample = read_baskets(sample_path())
    start = sample.timestamps.min().astype("datetime64[D]")
    tail = full.subset(full.timestamps >= start)
    assert fingerprint(tail) == fingerprint(sample)
    assert profile(sample)["fingerprint"] == fingerprint(sample)
