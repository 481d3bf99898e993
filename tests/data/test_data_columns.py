"""Long Parquet with integer transaction ids (the compiled path) reads exactly as with the same
ids as strings (the general path); the linear-time grouping matches a plain sort."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from basketry.data import read_baskets
from basketry.data._columns import group_pairs, int_codes


@pytest.mark.parametrize("grouped", [True, False])
def test_integer_transactions_match_string_transactions(tmp_path, grouped):
    rng = np.random.default_rng(3)
    tx = np.repeat(rng.permutation(5_000) * 7 - 1_000, rng.integers(1, 6, 5_000))
    if not grouped:
        tx = rng.permutation(tx)
    items = rng.integers(0, 300, tx.shape[0])  # repeats within a basket happen: merged
    names = pa.array([f"p{i:03d}" for i in range(300)])
    stamps = pa.array(rng.integers(0, 10**12, tx.shape[0]).astype("datetime64[ns]"))
    for name, column in (("int", pa.array(tx)), ("str", pa.array([str(x) for x in tx]))):
        table = pa.table({"transaction": column, "item": names.take(pa.array(items)),
                          "timestamp": stamps})
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=1_000)
    a = read_baskets(tmp_path / "int.parquet")
    b = read_baskets(tmp_path / "str.parquet")
    assert a.report == b.report
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert list(a.basket_ids) == list(b.basket_ids)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.report["duplicate_items_merged"] > 0


def test_int_codes_first_appearance():
    codes, ids = int_codes(np.array([5, 5, -3, 5, 9, -3, 9, 9], dtype=np.int64))
    assert codes.tolist() == [0, 0, 1, 0, 2, 1, 2, 2]
    assert ids.tolist() == [5, -3, 9]
    big = np.random.default_rng(0).integers(-(2**62), 2**62, 50_000)
    codes, ids = int_codes(big)
    _, first = np.unique(big, return_index=True)
    assert ids.tolist() == big[np.sort(first)].tolist()
    np.testing.assert_array_equal(ids[codes], big)


def test_group_pairs_matches_sorting():
    rng = np.random.default_rng(1)
    basket = rng.integers(0, 1_000, 20_000).astype(np.int32)
    basket[basket == 7] = 8  # basket 7 stays empty
    item = rng.integers(0, 50, 20_000).astype(np.int32)
    indptr, indices, present, dups = group_pairs(basket, item, 1_000)
    pairs = np.unique(basket.astype(np.int64) * 50 + item)
    assert dups == 20_000 - pairs.shape[0]
    np.testing.assert_array_equal(indices, pairs % 50)
    np.testing.assert_array_equal(present, np.unique(basket))
    np.testing.assert_array_equal(np.diff(indptr), np.bincount(pairs // 50)[present])
