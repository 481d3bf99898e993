"""The offline evaluation's compiled query builder and the shared protocol's array one (the
online replay's) build the same queries: offline and online figures are the same measure."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.data import Baskets
from basketry.model.protocol import build_queries, plan_queries
from basketry.training.evaluate import make_queries


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcdefghij"), max_size=9), max_size=30),
       st.sets(st.sampled_from("abcdefghij")), st.sampled_from([None, 2]),
       st.sampled_from([None, 7]), st.integers(0, 5))
def test_offline_and_online_queries_agree(rows, unknown, per_basket, overall, seed):
    test = Baskets.from_lists(rows)
    # the model's vocabulary: the test items except ``unknown``, renumbered in order
    known = [i for i, item in enumerate(test.items) if item not in unknown]
    old_to_new = np.full(test.n_items, -1, dtype=np.int32)
    old_to_new[known] = np.arange(len(known), dtype=np.int32)
    offline = make_queries(test, old_to_new, max_queries=overall,
                           max_hidden_per_basket=per_basket, seed=seed)
    plan = plan_queries(test.sizes, max_queries=overall, max_hidden_per_basket=per_basket,
                        seed=seed)
    ptr, items, hidden = build_queries(test.indptr, old_to_new[test.indices], plan)
    assert np.array_equal(offline.basket, plan.basket)
    assert np.array_equal(offline.ptr, ptr)
    assert np.array_equal(offline.items, items)
    assert np.array_equal(offline.hidden, hidden)
