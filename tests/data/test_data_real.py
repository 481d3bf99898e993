"""read_baskets on the shared real data sets (skipped when they are not there)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from basketry.data import PRESETS, read_baskets


@pytest.mark.parametrize(
    ("name", "n_baskets", "n_items", "size"),
    [
        ("retail.dat", 88_162, 16_470, None),
        ("groceries.csv", 9_835, 169, None),
        ("chess.dat", 3_196, 75, 37),
        ("mushroom.dat", 8_124, 119, 23),
        ("T10I4D100K.dat", 100_000, 870, None),
    ],
)
def test_basket_files(shared_data, name, n_baskets, n_items, size):
    b = read_baskets(shared_data / name)
    assert b.report["format"] == "basket"
    assert b.n_baskets == n_baskets
    assert b.n_items == n_items
    assert b.report["empty_baskets_dropped"] == 0
    if size is not None:
        assert np.all(b.sizes == size)


def test_groceries_items(shared_data):
    b = read_baskets(shared_data / "groceries.csv")
    assert b.report["separator"] == ","
    assert b.basket(0) == sorted(["citrus fruit", "semi-finished bread", "margarine",
                                  "ready soups"])
    assert "cream cheese" in set(b.items)  # stripped of the trailing space in the file


def test_online_retail_parquet(shared_data):
    path = shared_data / "online_retail.parquet"
    b = read_baskets(path)  # one call, no flags
    r = b.report
    assert r["preset"] == "online-retail"
    assert r["format"] == "long-parquet"

    raw = pq.read_table(path, columns=["InvoiceNo", "StockCode", "Quantity"])
    cancelled = pc.starts_with(raw["InvoiceNo"], "C").to_numpy(zero_copy_only=False)
    listed = pa.array(sorted(PRESETS["online-retail"].non_product_items))
    non_product = pc.is_in(pc.utf8_trim_whitespace(raw["StockCode"]), value_set=listed)
    non_product = non_product.to_numpy(zero_copy_only=False) & ~cancelled
    nonpos = (raw["Quantity"].to_numpy() <= 0) & ~cancelled & ~non_product
    assert r["rows_read"] == 541_909
    assert r["baskets_read"] == 25_900
    assert r["dropped_cancelled"] == int(cancelled.sum()) == 9_288
    assert r["dropped_non_product_rows"] == int(non_product.sum()) == 2_408
    assert r["dropped_nonpositive_quantity"] == int(nonpos.sum()) == 1_336
    assert r["rows_kept"] == 541_909 - 9_288 - 2_408 - 1_336
    assert not set(b.items) & PRESETS["online-retail"].non_product_items
    assert r["rows_kept"] == int(b.indptr[-1]) + r["duplicate_items_merged"]
    assert not any(str(x).startswith("C") for x in b.basket_ids)
    assert b.n_baskets == r["baskets_read"] - r["empty_baskets_dropped"]
    assert b.n_items <= 4_070

    assert b.labels is not None and b.labels.shape == b.items.shape
    labels = dict(zip(b.items, b.labels, strict=True))
    assert labels["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert sum(x is not None for x in b.labels) > 0.95 * b.n_items

    assert b.timestamps.dtype == np.dtype("datetime64[ns]")
    assert b.timestamps.shape == (b.n_baskets,)
    assert not np.isnat(b.timestamps).any()
    assert b.timestamps.min() == np.datetime64("2010-12-01T08:26")
    assert b.timestamps.max() == np.datetime64("2011-12-09T12:50")
    first = list(b.basket_ids).index("536365")
    assert b.timestamps[first] == np.datetime64("2010-12-01T08:26")
    assert sorted(b.basket(first)) == sorted(
        ["85123A", "71053", "84406B", "84029G", "84029E", "22752", "21730"]
    )
    assert b.customers[first] == "17850"
    assert sum(c is None for c in b.customers) > 0  # guests without a customer id
