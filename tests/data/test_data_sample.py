"""The bundled Online Retail sample."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from basketry.data import PRESETS, fingerprint, profile, read_baskets, sample_path


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
    # postage, carriage, manual lines, bank charges... (980 rows; 100 invoices held nothing
    # else)
    assert r["dropped_non_product_rows"] == 980
    assert b.n_baskets == 8_698 and b.n_items == 3_317
    assert not set(b.items) & PRESETS["online-retail"].non_product_items
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


def test_sample_non_product_lines():
    """What the non-product filter removes from the sample, counted on the file itself."""
    table = pq.read_table(sample_path()).to_pandas()
    codes = PRESETS["online-retail"].non_product_items
    listed = table["StockCode"].str.strip().isin(codes)
    cancelled = table["InvoiceNo"].str.startswith("C")
    assert int((listed & ~cancelled).sum()) == 980
    assert int((listed & ~cancelled & (table["StockCode"] == "POST")).sum()) == 528
    kept = read_baskets(sample_path())
    every = read_baskets(sample_path(), drop_non_products=False)
    assert every.report["dropped_non_product_rows"] == 0
    assert every.n_baskets == 8_798 and every.n_items == 3_325
    assert "POST" in set(every.items) and "POST" not in set(kept.items)
    # the baskets lost are exactly those made of non-product lines only
    only = sum(set(every.basket(i)) <= codes for i in range(every.n_baskets))
    assert only == 100 == every.n_baskets - kept.n_baskets
    assert kept.report["empty_baskets_dropped"] == every.report["empty_baskets_dropped"] + 100
    lost = set(every.items) - set(kept.items)
    assert lost <= codes and len(lost) == every.n_items - kept.n_items == 8
    top = [t["item"] for t in profile(kept, top=100)["top_items"]]
    assert not set(top) & codes
