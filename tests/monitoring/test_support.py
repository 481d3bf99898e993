"""Itemset support counts on a window's orders, held to a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.monitoring import support
from basketry.monitoring.support import (
    OrderIndex,
    containing_pairs,
    count_itemsets,
    unique_itemsets,
)

N_ITEMS = 12


def csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    return indptr, np.array([x for r in rows for x in r], dtype=np.int64)


def brute(orders: list[list[int]], itemsets: list[list[int]]) -> list[int]:
    return [sum(set(s) <= set(o) for o in orders) for s in itemsets]


orders_st = st.lists(st.lists(st.integers(-1, N_ITEMS - 1), max_size=9), max_size=40)
itemsets_st = st.lists(st.lists(st.integers(0, N_ITEMS - 1), max_size=5), max_size=60)


@settings(max_examples=300, deadline=None)
@given(orders=orders_st, itemsets=itemsets_st, budget=st.integers(1, 50))
def test_counts_equal_brute_force(orders, itemsets, budget):
    """Any orders (unknown items, repeats, empty orders) and itemsets (empty, repeated items),
    in chunks as small as one itemset."""
    got = count_itemsets(*csr(orders), *csr(itemsets), N_ITEMS, budget=budget)
    assert got.tolist() == brute(orders, itemsets)


@settings(max_examples=300, deadline=None)
@given(orders=orders_st, itemsets=itemsets_st,
       limits=st.sampled_from([(2, 10**9), (4, 10**9), (64, 0)]))
def test_counts_equal_brute_force_on_every_path(orders, itemsets, limits):
    """Orders past ``MAX_PAIR_ORDER`` go by item postings, the others by pair postings; past
    ``MAX_PAIRS`` the whole window goes by item postings."""
    saved = support.MAX_PAIR_ORDER, support.MAX_PAIRS
    support.MAX_PAIR_ORDER, support.MAX_PAIRS = limits
    try:
        got = count_itemsets(*csr(orders), *csr(itemsets), N_ITEMS, budget=5)
    finally:
        support.MAX_PAIR_ORDER, support.MAX_PAIRS = saved
    assert got.tolist() == brute(orders, itemsets)


@settings(max_examples=150, deadline=None)
@given(orders=orders_st, itemsets=itemsets_st)
def test_containing_pairs_are_exactly_the_containments(orders, itemsets):
    index = OrderIndex(*csr(orders), N_ITEMS)
    got = set()
    for sets, rows in containing_pairs(index, *csr(itemsets), budget=7):
        got |= set(zip(sets.tolist(), rows.tolist(), strict=True))
    want = {(s, o) for s, items in enumerate(itemsets) if items
            for o, order in enumerate(orders) if set(items) <= set(order)}
    assert got == want


@settings(max_examples=150, deadline=None)
@given(itemsets=itemsets_st)
def test_unique_itemsets(itemsets):
    offsets, values, inverse = unique_itemsets(*csr(itemsets), N_ITEMS)
    unique = [values[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]
    assert all(u == sorted(set(u)) for u in unique)
    assert len({tuple(u) for u in unique}) == len(unique)
    assert [unique[i] for i in inverse.tolist()] == [sorted(set(s)) for s in itemsets]


def test_unique_itemsets_beyond_one_integer_code():
    """Itemsets too long for one int64 code per itemset take the row-wise path."""
    n_items = 100_000
    sets = [[1, 2, 3, 4, 99_999], [99_999, 4, 3, 2, 1], [1, 2, 3, 4, 5]]
    offsets, values, inverse = unique_itemsets(*csr(sets), n_items)
    assert inverse.tolist() == [1, 1, 0] and offsets.tolist() == [0, 5, 10]
    assert values.tolist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 99_999]


def test_huge_order_is_counted_without_enumerating_its_subsets():
    """An order of 1,000 items (166M triples) beside small ones; a small budget."""
    rng = np.random.default_rng(0)
    n_items = 2_000
    orders = [list(range(1_000))] + [rng.choice(n_items, 6, replace=False).tolist()
                                     for _ in range(300)]
    itemsets = [rng.choice(1_200, size, replace=False).tolist()
                for size in rng.integers(2, 6, 400)]
    got = count_itemsets(*csr(orders), *csr(itemsets), n_items, budget=1_000)
    assert got.tolist() == brute(orders, itemsets)
    assert got.min() >= 0 and (got >= 1).sum() >= 100  # the big order holds many of them


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="n_items"):
        count_itemsets(*csr([[0, 5]]), *csr([[0]]), 3)
    with pytest.raises(ValueError, match="itemsets_values"):
        count_itemsets(*csr([[0]]), *csr([[7]]), 3)
    with pytest.raises(ValueError, match="orders_indptr"):
        count_itemsets(np.array([0, 3]), np.array([0]), *csr([[0]]), 3)
