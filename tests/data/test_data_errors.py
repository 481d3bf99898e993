"""DataError for every kind of bad input, with messages naming the problem."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from basketry.data import DataError, read_baskets


def test_dataerror_is_valueerror():
    assert issubclass(DataError, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        read_baskets(tmp_path / "nope.csv")


def test_directory(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_baskets(tmp_path)


def test_unknown_format(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("a b\n")
    with pytest.raises(DataError, match=r"unknown format 'xlsx'.*basket, long-csv, long-parquet"):
        read_baskets(p, format="xlsx")


def test_unknown_preset(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n")
    with pytest.raises(DataError, match=r"unknown preset 'retail'.*online-retail"):
        read_baskets(p, preset="retail")


@pytest.mark.parametrize("name", ["empty.dat", "empty.csv", "empty.parquet"])
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_baskets(p)


def test_blank_basket_file(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("\n  \n\n")
    with pytest.raises(DataError, match="empty input"):
        read_baskets(p)


def test_header_only_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item\n")
    with pytest.raises(DataError, match=r"x\.csv: empty input \(no data rows\)"):
        read_baskets(p)


def test_empty_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"transaction": pa.array([], pa.string()),
                             "item": pa.array([], pa.string())}), p)
    with pytest.raises(DataError, match="no data rows"):
        read_baskets(p)


def test_misnamed_column_suggests(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("TransactionID,ItemName,When\n1,a,2024-01-01\n")
    with pytest.raises(DataError) as e:
        read_baskets(p, transaction_col="TransactionID", item_col="Item_Name")
    msg = str(e.value)
    assert "x.csv" in msg and "'Item_Name'" in msg and "item_col" in msg
    assert "'TransactionID', 'ItemName', 'When'" in msg
    assert "did you mean 'ItemName'?" in msg
    assert msg.count("no column") == 1


def test_missing_column_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"invoice": ["1"], "sku": ["a"], "timestamp": ["2024-01-01"]}), p)
    with pytest.raises(DataError, match=r"no column 'timestmp' for the timestamp "
                                        r"\(timestamp_col; did you mean 'timestamp'\?\)"):
        read_baskets(p, timestamp_col="timestmp")


def test_cannot_tell_columns(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": ["1"], "b": ["x"]}), p)
    with pytest.raises(DataError, match=r"which column holds the transaction; pass "
                                        r"transaction_col=.*'a', 'b'"):
        read_baskets(p)


def test_preset_columns_missing(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("InvoiceNo,StockCode\n1,a\n")
    with pytest.raises(DataError) as e:
        read_baskets(p, preset="online-retail")
    msg = str(e.value)
    for col in ("InvoiceDate", "Description", "Quantity", "CustomerID"):
        assert f"no column {col!r}" in msg
    assert "preset 'online-retail'" in msg


def test_flags_with_basket_format(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("a b\n")
    with pytest.raises(DataError, match=r"basket format .* has no columns"):
        read_baskets(p, item_col="item")


def test_unparsable_timestamp_names_line_and_value(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(
        "transaction,item,timestamp\n1,a,2024-01-01\n1,b,2024-01-01\n2,a,yesterday\n"
    )
    with pytest.raises(DataError) as e:
        read_baskets(p)
    msg = str(e.value)
    assert "x.csv: line 4" in msg and "'yesterday'" in msg and "'timestamp'" in msg


def test_unparsable_timestamp_with_format(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"transaction": ["1", "2", "3"], "item": ["a", "b", "c"],
                             "date": ["01/02/2024", "13/13/2024", "03/02/2024"]}), p)
    with pytest.raises(DataError, match=r"x\.parquet: row 1: cannot parse timestamp "
                                        r"'13/13/2024'.*'%d/%m/%Y'"):
        read_baskets(p, timestamp_format="%d/%m/%Y")


def test_timestamp_of_wrong_type(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"transaction": ["1"], "item": ["a"], "timestamp": [1.5]}), p)
    with pytest.raises(DataError, match="timestamp column 'timestamp' has type double"):
        read_baskets(p)


def test_item_column_entirely_null(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"transaction": ["1", "2"], "item": pa.array([None, None],
                                                                         pa.string())}), p)
    with pytest.raises(DataError, match=r"item column 'item' is entirely null"):
        read_baskets(p)


def test_item_column_entirely_blank(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('transaction,item\n1," "\n2,"  "\n')
    with pytest.raises(DataError, match=r"item column 'item' has no non-blank value"):
        read_baskets(p)


def test_nothing_left_after_filters(tmp_path):
    df = pd.DataFrame({
        "InvoiceNo": ["C1", "C2", "3"], "StockCode": ["a", "b", "c"],
        "Description": ["x", "y", "z"], "Quantity": [-1, -2, 0],
        "InvoiceDate": ["2011-01-01 10:00"] * 3, "CustomerID": [1.0, 2.0, 3.0],
    })
    p = tmp_path / "x.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError) as e:
        read_baskets(p)
    msg = str(e.value)
    assert "no baskets left after filtering" in msg
    assert "3 rows read" in msg and "cancelled: 2" in msg and "nonpositive_quantity: 1" in msg


def test_drop_non_products_needs_a_preset_with_a_list(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item\n1,POST\n1,a\n")
    with pytest.raises(DataError, match=r"x\.csv: drop_non_products needs a preset that lists "
                       r"non-product items \(online-retail, online-retail-ii\); no preset "
                       r"applies"):
        read_baskets(p, drop_non_products=True)
    b = read_baskets(p)  # no preset: nothing dropped, POST is an item like another
    assert b.report["dropped_non_product_rows"] == 0 and "POST" in set(b.items)
    assert read_baskets(p, drop_non_products=False).report["dropped_non_product_rows"] == 0
    d = tmp_path / "x.dat"
    d.write_text("POST a\nb\n")
    with pytest.raises(DataError, match=r"drop_non_products .*the basket format has no preset"):
        read_baskets(d, drop_non_products=True)


def test_nothing_left_but_non_products(tmp_path):
    df = pd.DataFrame({
        "InvoiceNo": ["1", "2"], "StockCode": ["POST", "DOT"],
        "Description": ["POSTAGE", "DOTCOM POSTAGE"], "Quantity": [1, 1],
        "InvoiceDate": ["2011-01-01 10:00"] * 2, "CustomerID": [1.0, 2.0],
    })
    p = tmp_path / "x.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=r"no baskets left after filtering: 2 rows read, all "
                       r"removed \(non_product_rows: 2\)"):
        read_baskets(p)


def test_non_numeric_quantity(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item,quantity\n1,a,two\n")
    with pytest.raises(DataError, match="quantity column 'quantity' is not numeric"):
        read_baskets(p)


def test_invalid_utf8_names_line(tmp_path):
    p = tmp_path / "x.dat"
    p.write_bytes(b"a b\nc \xff d\n")
    with pytest.raises(DataError, match=r"x\.dat: line 2: not valid UTF-8"):
        read_baskets(p)


def test_corrupt_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_baskets(p)


def test_ragged_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("transaction,item\n1,a\n2,b,extra\n")
    with pytest.raises(DataError, match=re.escape("cannot parse as CSV")):
        read_baskets(p)
