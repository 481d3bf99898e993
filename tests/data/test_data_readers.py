"""read_baskets on small files of every format."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from basketry.data import read_baskets
from basketry.data.baskets import Baskets


def as_sets(b: Baskets) -> list[frozenset[str]]:
    return [frozenset(b.basket(i)) for i in range(b.n_baskets)]


def check_csr(b: Baskets) -> None:
    assert b.indptr.dtype == np.int64
    assert b.indices.dtype == np.int32
    assert b.indptr[0] == 0 and b.indptr[-1] == b.indices.shape[0]
    assert np.all(np.diff(b.indptr) > 0)
    for i in range(b.n_baskets):
        row = b.indices[b.indptr[i] : b.indptr[i + 1]]
        assert np.all(np.diff(row) > 0)
    assert list(b.items) == sorted(b.items)
    assert b.items.dtype == object


# ------------------------------------------------------------------ basket format


def test_basket_whitespace(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("1 2 3 \n2  3\t5\n\n7\n3 3 1\n")
    b = read_baskets(p)
    check_csr(b)
    assert [b.basket(i) for i in range(b.n_baskets)] == [
        ["1", "2", "3"], ["2", "3", "5"], ["7"], ["1", "3"]
    ]
    r = b.report
    assert r["format"] == "basket"
    assert r["rows_read"] == 5
    assert r["empty_baskets_dropped"] == 1
    assert r["duplicate_items_merged"] == 1
    assert r["n_baskets"] == 4 and r["n_items"] == 5 and r["n_entries"] == 9
    assert b.timestamps is None and b.labels is None


def test_basket_comma_with_spaces_blanks_crlf(tmp_path):
    p = tmp_path / "g.csv"
    p.write_bytes(b"whole milk, cream cheese ,yogurt\r\nsoda,,soda\r\n , \r\nbeef\r\n")
    b = read_baskets(p)
    check_csr(b)
    assert as_sets(b) == [
        {"whole milk", "cream cheese", "yogurt"}, {"soda"}, {"beef"}
    ]
    r = b.report
    assert r["separator"] == ","
    assert r["dropped_blank_items"] == 3
    assert r["duplicate_items_merged"] == 1
    assert r["empty_baskets_dropped"] == 1


def test_basket_explicit_sep_and_no_trailing_newline(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("a;b c;d\ne")
    b = read_baskets(p, sep=";")
    assert as_sets(b) == [{"a", "b c", "d"}, {"e"}]


def test_basket_gzip_and_format_flag(tmp_path):
    p = tmp_path / "x.dat.gz"
    with gzip.open(p, "wt") as f:
        f.write("x y\ny z\n")
    b = read_baskets(p)
    assert as_sets(b) == [{"x", "y"}, {"y", "z"}]
    q = tmp_path / "plain.csv"
    q.write_text("transaction,item\n")  # a header-looking line, but forced to basket
    b2 = read_baskets(q, format="basket")
    assert as_sets(b2) == [{"transaction", "item"}]


def test_basket_unicode_items(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("café,naïve,日本\nnaïve\n", encoding="utf-8")
    b = read_baskets(p)
    assert as_sets(b) == [{"café", "naïve", "日本"}, {"naïve"}]


# ------------------------------------------------------------------ long csv


def test_long_csv_known_columns(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text(
        "order_id,product,timestamp,customer_id,qty\n"
        "o2,b,2024-01-02 10:00:00,c9,1\n"
        "o1,a,2024-01-01 09:00:00,c1,2\n"
        "o2,a,2024-01-02 09:30:00,c9,1\n"
        "o1,a,2024-01-01 09:05:00,c1,1\n"
        "o3,c,2024-01-03 00:00:00,,0\n"
        "o4,,2024-01-04 00:00:00,c2,1\n"
        "o4, ,2024-01-04 00:00:00,c2,1\n"
        "o5,c,2024-01-05T00:00:00,c2,3\n"
    )
    b = read_baskets(p)
    check_csr(b)
    r = b.report
    assert r["format"] == "long-csv"
    assert r["columns"] == {
        "transaction": "order_id", "item": "product", "timestamp": "timestamp",
        "customer": "customer_id", "quantity": "qty",
    }
    assert list(b.basket_ids) == ["o2", "o1", "o5"]  # first appearance
    assert as_sets(b) == [{"a", "b"}, {"a"}, {"c"}]
    assert list(b.timestamps) == list(
        np.array(["2024-01-02T09:30", "2024-01-01T09:00", "2024-01-05T00:00"],
                 dtype="datetime64[ns]")
    )
    assert list(b.customers) == ["c9", "c1", "c2"]
    assert r["rows_read"] == 8
    assert r["dropped_nonpositive_quantity"] == 1
    assert r["dropped_null_items"] == 1
    assert r["dropped_blank_items"] == 1
    assert r["duplicate_items_merged"] == 1
    assert r["rows_kept"] == 5
    assert r["baskets_read"] == 5
    assert r["empty_baskets_dropped"] == 2
    assert r["dropped_cancelled"] == 0


def test_long_csv_flags_tsv_labels(tmp_path):
    p = tmp_path / "long.tsv"
    p.write_text(
        "T\tSKU\tName\tWhen\n"
        "1\t007\tred cup\t01/02/2024\n"
        "1\t010\tplate\t01/02/2024\n"
        "2\t007\tRed cup\t02/02/2024\n"
        "3\t007\tred cup\t03/02/2024\n"
        "3\t010\t \t03/02/2024\n"
    )
    b = read_baskets(
        p, transaction_col="T", item_col="SKU", label_col="Name", timestamp_col="When",
        timestamp_format="%d/%m/%Y",
    )
    assert list(b.items) == ["007", "010"]  # strings kept as read, leading zeros too
    assert list(b.labels) == ["red cup", "plate"]
    assert list(b.basket_ids) == ["1", "2", "3"]
    assert b.timestamps[1] == np.datetime64("2024-02-02")


def test_long_csv_drop_cancelled_flag_and_semicolon(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("invoice;item\nA1;x\nC2;x\nA1;y\n")
    b = read_baskets(p, drop_cancelled=True)
    assert b.report["dropped_cancelled"] == 1
    assert list(b.basket_ids) == ["A1"]
    assert read_baskets(p).n_baskets == 2


def test_online_retail_csv_autodetected(tmp_path):
    df = pd.DataFrame({
        "InvoiceNo": ["536365", "536365", "C536379", "536366", "536366", "536367"],
        "StockCode": ["85123A", "71053", "85123A", "22633", "22633", "D"],
        "Description": ["WHITE HEART", "LANTERN", "WHITE HEART", "HAND WARMER", None,
                        "Discount"],
        "Quantity": [6, 6, -1, 6, 2, -1],
        "InvoiceDate": ["2010-12-01 08:26:00"] * 3 + ["2010-12-01 08:28:00"] * 2
        + ["2010-12-02 10:00:00"],
        "UnitPrice": [2.55, 3.39, 2.55, 1.85, 1.85, 10.0],
        "CustomerID": [17850.0, 17850.0, 17850.0, None, None, 14527.0],
        "Country": ["United Kingdom"] * 6,
    })
    p = tmp_path / "or.csv"
    df.to_csv(p, index=False)
    b = read_baskets(p)
    r = b.report
    assert r["preset"] == "online-retail"
    assert r["dropped_cancelled"] == 1
    # the Discount line (quantity -1) goes first as a non-product line
    assert r["dropped_non_product_rows"] == 1
    assert r["dropped_nonpositive_quantity"] == 0
    assert r["duplicate_items_merged"] == 1
    assert list(b.basket_ids) == ["536365", "536366"]
    assert list(b.customers) == ["17850.0", None]  # as written in the CSV
    assert dict(zip(b.items, b.labels, strict=True)) == {
        "22633": "HAND WARMER", "71053": "LANTERN", "85123A": "WHITE HEART"
    }
    q = tmp_path / "or.parquet"
    df.to_parquet(q)
    bq = read_baskets(q)
    assert list(bq.customers) == ["17850", None]
    assert as_sets(bq) == as_sets(b)
    assert np.array_equal(bq.timestamps, b.timestamps)


def _online_retail_with_fees() -> str:
    return (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
        "536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.00,17850,United Kingdom\n"
        "536365,71053,LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom\n"
        "536366,DOT,DOTCOM POSTAGE,1,2010-12-01 08:28:00,50.00,,United Kingdom\n"
        "536366,M,Manual,1,2010-12-01 08:28:00,1.00,,United Kingdom\n"
        "536367,85123A,WHITE HEART,2,2010-12-02 10:00:00,2.55,14527,France\n"
        "536367,71053,LANTERN,1,2010-12-02 10:00:00,3.39,14527,France\n"
        "536367, POST ,POSTAGE,2,2010-12-02 10:00:00,18.00,14527,France\n"
        "536368,M,Manual,-1,2010-12-02 11:00:00,1.00,14527,France\n"
        "536368,22633,HAND WARMER,3,2010-12-02 11:00:00,1.85,14527,France\n"
        "C536369,POST,POSTAGE,-1,2010-12-02 12:00:00,18.00,14527,France\n"
    )


def test_online_retail_non_products_dropped_by_default(tmp_path):
    p = tmp_path / "or.csv"
    p.write_text(_online_retail_with_fees())
    b = read_baskets(p)  # the online-retail preset is detected
    check_csr(b)
    r = b.report
    assert r["preset"] == "online-retail"
    # counted once, under the first reason: the cancelled POST line is cancelled, the M line
    # of quantity -1 a non-product line; " POST " is POST once stripped
    assert r["dropped_cancelled"] == 1
    assert r["dropped_non_product_rows"] == 5
    assert r["dropped_nonpositive_quantity"] == 0
    assert r["rows_kept"] == 11 - 1 - 5
    assert list(r).index("dropped_non_product_rows") == list(r).index("dropped_cancelled") + 1
    # 536366 held only postage and a manual line: no basket left
    assert list(b.basket_ids) == ["536365", "536367", "536368"]
    assert r["empty_baskets_dropped"] == 2
    assert as_sets(b) == [{"85123A", "71053"}, {"85123A", "71053"}, {"22633"}]
    assert not {"POST", "DOT", "M"} & set(b.items)
    named = read_baskets(p, preset="online-retail")
    assert named.report["dropped_non_product_rows"] == 5 and as_sets(named) == as_sets(b)


def test_online_retail_non_products_kept_on_request(tmp_path):
    p = tmp_path / "or.csv"
    p.write_text(_online_retail_with_fees())
    b = read_baskets(p, drop_non_products=False)
    r = b.report
    assert r["dropped_non_product_rows"] == 0
    assert r["dropped_cancelled"] == 1
    assert r["dropped_nonpositive_quantity"] == 1  # the M line of quantity -1
    assert list(b.basket_ids) == ["536365", "536366", "536367", "536368"]
    assert as_sets(b) == [{"85123A", "71053", "POST"}, {"DOT", "M"},
                          {"85123A", "71053", "POST"}, {"22633"}]
    assert read_baskets(p, drop_non_products=True).report["dropped_non_product_rows"] == 5


def test_online_retail_ii_drops_non_products(tmp_path):
    df = pd.DataFrame({
        "Invoice": ["489434", "489434", "489435", "489435"],
        "StockCode": ["85048", "POST", "22041", "C2"],
        "Description": ["GLASS BALL", "POSTAGE", "RECORD FRAME", "CARRIAGE"],
        "Quantity": [12, 1, 48, 1],
        "InvoiceDate": ["2009-12-01 07:45:00"] * 2 + ["2009-12-01 07:46:00"] * 2,
        "Price": [6.95, 18.0, 2.1, 50.0],
        "Customer ID": [13085.0, 13085.0, None, None],
        "Country": ["United Kingdom"] * 4,
    })
    p = tmp_path / "or2.parquet"
    df.to_parquet(p)
    b = read_baskets(p)
    assert b.report["preset"] == "online-retail-ii"
    assert b.report["dropped_non_product_rows"] == 2
    assert as_sets(b) == [{"85048"}, {"22041"}]


def test_non_product_codes_of_the_presets():
    from basketry.data import PRESETS

    for name in ("online-retail", "online-retail-ii"):
        codes = PRESETS[name].non_product_items
        assert {"POST", "DOT", "M", "C2", "D", "BANK CHARGES", "CRUK", "S", "AMAZONFEE",
                "B"} <= codes
        # sold items with odd codes stay
        assert not {"DCGSSBOY", "DCGSSGIRL", "PADS", "gift_0001_20"} & codes


# ------------------------------------------------------------------ long parquet


def test_long_parquet_types(tmp_path):
    t = pa.table({
        "basket": pa.array([10, 10, 11, 12, 12], pa.int64()),
        "item": pa.array(["b", "a", "a", "c", "c"]),
        "ts": pa.array(
            np.array(["2024-03-01T10:00", "2024-03-01T09:00", "NaT", "2024-03-02",
                      "2024-03-03"], dtype="datetime64[ms]"),
            from_pandas=True,
        ).cast(pa.timestamp("ms", tz="Europe/Paris")),
        "user": pa.array([1.0, 1.0, None, 2.5, 2.5]),
    })
    p = tmp_path / "x.parquet"
    pq.write_table(t, p, row_group_size=2)  # several row groups, several dictionaries
    b = read_baskets(p, timestamp_col="ts", customer_col="user")
    check_csr(b)
    assert list(b.basket_ids) == ["10", "11", "12"]
    assert as_sets(b) == [{"a", "b"}, {"a"}, {"c"}]
    # the zone is converted to naive UTC (the ms values are stored as UTC instants)
    assert b.timestamps[0] == np.datetime64("2024-03-01T09:00")
    assert np.isnat(b.timestamps[1])
    assert b.report["null_timestamps"] == 1
    assert list(b.customers) == ["1", None, "2.5"]  # not all integral: float formatting


def test_long_parquet_dictionary_columns_and_extension_sniffing(tmp_path):
    t = pa.table({
        "tid": pa.array(["t1", "t1", "t2"]).dictionary_encode(),
        "sku": pa.array(["z", "y", "z"]).dictionary_encode(),
    })
    p = tmp_path / "no_extension"
    pq.write_table(t, p)
    b = read_baskets(p, transaction_col="tid", item_col="sku")
    assert b.report["format"] == "long-parquet"
    assert as_sets(b) == [{"y", "z"}, {"z"}]
    assert list(b.items) == ["y", "z"]


def test_customers_several_per_basket(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item,customer\n1,a,zed\n1,b,amy\n2,a,bo\n")
    b = read_baskets(p)
    assert list(b.customers) == ["amy", "bo"]
    assert b.report["baskets_with_several_customers"] == 1


def test_ungrouped_rows_min_timestamp(tmp_path):
    # rows of a transaction are not contiguous: the per-basket reductions use ufunc.at
    p = tmp_path / "x.csv"
    p.write_text(
        "transaction,item,timestamp\n"
        "1,a,2024-01-05\n2,a,2024-01-03\n1,b,2024-01-01\n2,c,2024-01-09\n3,a,2024-01-02\n"
    )
    b = read_baskets(p)
    assert list(b.basket_ids) == ["1", "2", "3"]
    assert list(b.timestamps.astype("datetime64[D]").astype(str)) == [
        "2024-01-01", "2024-01-03", "2024-01-02"
    ]


def test_reader_writes_nothing(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item\n1,a\n")
    before = sorted(tmp_path.iterdir())
    read_baskets(p)
    assert sorted(tmp_path.iterdir()) == before


def test_timezone_strings_to_utc(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item,timestamp\n1,a,2024-01-01T10:00:00+02:00\n")
    b = read_baskets(p)
    assert b.timestamps[0] == np.datetime64("2024-01-01T08:00")


@pytest.mark.parametrize("fmt", ["long-csv", "long-parquet"])
def test_large_ids_and_many_rows(tmp_path, fmt):
    rng = np.random.default_rng(0)
    n = 50_000
    tx = rng.integers(0, 5_000, n)
    it = rng.integers(0, 700, n)
    df = pd.DataFrame({"transaction": tx.astype(str), "item": [f"i{x}" for x in it]})
    p = tmp_path / ("x.csv" if fmt == "long-csv" else "x.parquet")
    if fmt == "long-csv":
        df.to_csv(p, index=False)
    else:
        df.to_parquet(p)
    b = read_baskets(p)
    expected = df.groupby("transaction", sort=False)["item"].agg(frozenset)
    assert list(b.basket_ids) == list(expected.index)
    assert as_sets(b) == list(expected.values)
    assert b.report["duplicate_items_merged"] == n - int(b.indptr[-1])
