"""The full layout's refinement: moves and swaps between pairs of aisles on the occurrence
weights, under capacities, anchors and categories kept apart."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.layout.refine import refine_aisles


def _graph(rng: np.random.Generator, n: int, density: float = 0.3) -> sp.csr_matrix:
    dense = np.triu(rng.integers(1, 20, (n, n)) * (rng.random((n, n)) < density), 1)
    return sp.csr_matrix((dense + dense.T).astype(np.float64))


def _same(w: sp.csr_matrix, aisle: np.ndarray) -> float:
    upper = sp.triu(w, k=1).tocoo()
    return float(upper.data @ (aisle[upper.row] == aisle[upper.col]))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_refinement_ends_where_no_move_or_swap_gains(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_aisles = 16, 4
    w = _graph(rng, n)
    caps = np.array([5, 4, 4, 5])
    aisle = np.repeat(np.arange(n_aisles), [4, 4, 4, 4])[rng.permutation(n)]
    movable = rng.random(n) > 0.2
    out = refine_aisles(w, aisle, caps, movable)
    got = out.aisle
    assert (np.bincount(got, minlength=n_aisles) <= caps).all()
    assert (got[~movable] == aisle[~movable]).all()  # anchors stay
    assert out.gain >= 0
    assert _same(w, got) - _same(w, aisle) == pytest.approx(out.gain, abs=1e-9)
    # a local optimum: no move into free space and no swap of two movable products gains
    base = _same(w, got)
    size = np.bincount(got, minlength=n_aisles)
    for i in np.flatnonzero(movable):
        for b in range(n_aisles):
            if b != got[i] and size[b] < caps[b]:
                trial = got.copy()
                trial[i] = b
                assert _same(w, trial) <= base + 1e-9
        for k in np.flatnonzero(movable):
            if got[k] != got[i]:
                trial = got.copy()
                trial[i], trial[k] = got[k], got[i]
                assert _same(w, trial) <= base + 1e-9


def test_refinement_finds_the_swap_of_two_misplaced_products() -> None:
    w = np.zeros((6, 6))
    for group in ((0, 1, 2), (3, 4, 5)):
        for x in group:
            for y in group:
                if x != y:
                    w[x, y] = 3.0
    aisle = np.array([0, 0, 1, 1, 1, 0])  # 2 and 5 swapped, no free space
    out = refine_aisles(sp.csr_matrix(w), aisle, np.array([3, 3]), np.ones(6, dtype=bool))
    assert out.aisle.tolist() == [0, 0, 0, 1, 1, 1]
    assert out.steps == 1 and out.gain == 4 * 3.0


def test_refinement_keeps_categories_apart() -> None:
    rng = np.random.default_rng(7)
    n, n_aisles = 24, 4
    w = _graph(rng, n, 0.5)
    category = np.where(np.arange(n) % 3 == 0, 0, np.where(np.arange(n) % 3 == 1, 1, -1))
    conflicts = np.array([[False, True], [True, False]])
    # category 0 in aisles 0-1, category 1 in aisles 2-3: a valid start
    aisle = np.where(category == 0, np.arange(n) % 2, np.where(category == 1,
                                                                 2 + np.arange(n) % 2,
                                                                 np.arange(n) % 4))
    caps = np.bincount(aisle, minlength=n_aisles) + 1
    out = refine_aisles(w, aisle, caps, np.ones(n, dtype=bool), category=category,
                        conflicts=conflicts)
    assert out.steps > 0
    for a in range(n_aisles):
        here = set(category[out.aisle == a].tolist())
        assert not {0, 1} <= here, f"aisle {a} holds both categories kept apart"
    assert (np.bincount(out.aisle, minlength=n_aisles) <= caps).all()
    assert _same(w, out.aisle) > _same(w, aisle)


def test_expected_random_share_is_the_mean_over_every_shuffle() -> None:
    from itertools import permutations

    from basketry.layout.evaluate import HeldOutPairs, expected_random_shares, shares

    pairs = HeldOutPairs(i=np.array([0, 0, 1, 2, 3]), j=np.array([1, 4, 2, 5, 6]),
                         count=np.array([3.0, 1.0, 2.0, 5.0, 4.0]), n_baskets=9, pairs_all=15)
    aisle = np.array([0, 0, 0, 1, 1, 2, -1])  # item 6 not placed
    placed = np.flatnonzero(aisle >= 0)
    got = []
    for p in permutations(range(placed.shape[0])):
        shuffled = aisle.copy()
        shuffled[placed] = aisle[placed][list(p)]
        got.append(shares(pairs, shuffled))
    mean = np.asarray(got).mean(axis=0)
    same, near = expected_random_shares(pairs, aisle)
    assert same == pytest.approx(mean[0]) and near == pytest.approx(mean[1])
