"""The hide-one protocol shared by the offline evaluation and the online replay."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.model.protocol import (
    build_queries,
    mean_interval,
    metrics_from_ranks,
    plan_queries,
    ranks_of_hidden,
    wilson_interval,
)

baskets = st.lists(st.lists(st.integers(-1, 30), min_size=0, max_size=12), min_size=0,
                   max_size=25)


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    rows = [sorted(r) for r in rows]
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    ids = np.array([i for r in rows for i in r], dtype=np.int64)
    return indptr, ids


@settings(max_examples=200, deadline=None)
@given(baskets, st.sampled_from([None, 1, 3]), st.sampled_from([None, 5, 40]),
       st.integers(0, 3))
def test_queries_hide_one_item_and_offer_the_known_others(rows, per_basket, overall, seed):
    indptr, ids = _csr(rows)
    sizes = np.diff(indptr)
    plan = plan_queries(sizes, max_queries=overall, max_hidden_per_basket=per_basket,
                        seed=seed)
    ptr, items, hidden = build_queries(indptr, ids, plan)
    assert plan.n_eligible_baskets == int((sizes >= 2).sum())
    expected_candidates = sum(min(int(s), per_basket or int(s)) for s in sizes if s >= 2)
    assert plan.n_candidate_queries == expected_candidates
    assert len(hidden) == min(expected_candidates, overall or expected_candidates)
    seen = set()
    for q in range(len(hidden)):
        b, pos = int(plan.basket[q]), int(plan.pos[q])
        basket = list(ids[indptr[b]:indptr[b + 1]])
        assert hidden[q] == basket[pos]
        offered = [x for i, x in enumerate(basket) if i != pos and x >= 0]
        assert list(items[ptr[q]:ptr[q + 1]]) == offered
        assert (b, pos) not in seen  # each item hidden at most once
        seen.add((b, pos))
    # the same seed, the same queries
    again = plan_queries(sizes, max_queries=overall, max_hidden_per_basket=per_basket,
                         seed=seed)
    assert np.array_equal(again.basket, plan.basket) and np.array_equal(again.pos, plan.pos)


def test_ranks_and_metrics_of_known_answers():
    top = np.array([[3, 1, 2], [5, 6, 7], [9, 8, -1], [1, 2, 3]])
    hidden = np.array([1, 4, -1, 1])
    ranks = ranks_of_hidden(top, hidden)
    assert ranks.tolist() == [2, 0, 0, 1]
    m = metrics_from_ranks(ranks, ks=(1, 3))
    assert m["hit_rate@1"] == 0.25 and m["hit_rate@3"] == 0.5
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1) / 4)
    assert m["mrr"] == pytest.approx((0.5 + 1) / 4)


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    # reference values of the Wilson score interval at 95% (Newcombe 1998, table I)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (20, 20, 0.8389, 1.0),
])
def test_wilson_interval_matches_published_values(successes, n, low, high):
    lo, hi = wilson_interval(successes, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_intervals_without_observations_are_none_and_stay_in_0_1():
    assert wilson_interval(0, 0) is None and mean_interval(0.0, 0.0, 0) is None
    lo, hi = mean_interval(3.0, 3.0, 3)  # three gains of 1: no spread
    assert lo == hi == 1.0
    lo, hi = mean_interval(0.5, 0.25, 1)  # one observation: nothing known about the spread
    assert (lo, hi) == (0.0, 1.0)
