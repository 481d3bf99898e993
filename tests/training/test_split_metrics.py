"""Splits, queries, metrics and baselines on tiny hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from basketry.data import Baskets, DataError
from basketry.model import RuleScorer, items_table
from basketry.training import make_queries, metrics_from_ranks, random_split, time_split
from basketry.training.evaluate import evaluate, random_top, ranks_of_hidden
from basketry.training.split import split_baskets, training_vocabulary
from tests.model.conftest import make_rules


def dated(n: int = 40) -> Baskets:
    rows = [[*["a", "b", "c"][: 1 + i % 3], f"x{i % 5}"] for i in range(n)]
    base = Baskets.from_lists(rows)
    stamps = np.datetime64("2024-01-01") + np.arange(n) * np.timedelta64(1, "D")
    return Baskets(indptr=base.indptr, indices=base.indices, items=base.items,
                   timestamps=stamps.astype("datetime64[ns]"))


def test_time_split_has_no_test_basket_before_the_cutoff():
    baskets = dated()
    split = time_split(baskets, 10)
    assert split.method == "time"
    assert split.cutoff == np.datetime64("2024-01-30T00:00", "ns")  # last day 2024-02-09
    assert (split.test.timestamps >= split.cutoff).all()
    assert (split.train.timestamps < split.cutoff).all()
    assert split.train.n_baskets + split.test.n_baskets == baskets.n_baskets
    assert split.test.n_baskets == 11
    # timestamps choose the time split by default, 30 days
    assert split_baskets(baskets).describe()["test_days"] == 30.0


def test_random_split_is_seeded():
    baskets = Baskets.from_lists([["a", str(i)] for i in range(200)])
    a, b = random_split(baskets, 0.25, seed=7), random_split(baskets, 0.25, seed=7)
    assert np.array_equal(a.test.indices, b.test.indices)
    assert np.array_equal(a.train.indptr, b.train.indptr)
    c = random_split(baskets, 0.25, seed=8)
    assert not np.array_equal(a.test.indices, c.test.indices)
    assert 30 < a.test.n_baskets < 70
    assert split_baskets(baskets).method == "random"  # no timestamps


@pytest.mark.parametrize("kwargs", [{"test_days": 5, "test_fraction": 0.2},
                                    {"test_fraction": 1.5}, {"test_fraction": 0.0}])
def test_bad_split_parameters(kwargs):
    with pytest.raises(DataError):
        split_baskets(dated(), **kwargs)


def test_time_split_needs_timestamps_and_both_parts():
    with pytest.raises(DataError, match="no timestamps"):
        time_split(Baskets.from_lists([["a"], ["b"]]), 3)
    with pytest.raises(DataError, match="both parts"):
        time_split(dated(), 1000)


def test_training_vocabulary_and_queries():
    # vocabulary a b c d; training lacks d
    train = Baskets.from_lists([["a", "b"], ["b", "c"]], items=["a", "b", "c", "d"])
    narrowed, old_to_new = training_vocabulary(train)
    assert narrowed.items.tolist() == ["a", "b", "c"]
    assert old_to_new.tolist() == [0, 1, 2, -1]
    test = Baskets.from_lists([["a", "c", "d"], ["b"], ["c", "a"]], items=["a", "b", "c", "d"])
    q = make_queries(test, old_to_new, max_queries=None, max_hidden_per_basket=None)
    # basket 0 hides a, c, d in turn; basket 1 is too small; basket 2 hides a, c
    assert q.hidden.tolist() == [0, 2, -1, 0, 2]
    offered = [q.items[q.ptr[i]:q.ptr[i + 1]].tolist() for i in range(q.n_queries)]
    assert offered == [[2], [0], [0, 2], [2], [0]]  # d is unknown to the model: dropped
    assert q.describe()["hidden_unknown_to_model"] == 1
    assert q.n_eligible_baskets == 2
    capped = make_queries(test, old_to_new, max_queries=None, max_hidden_per_basket=1, seed=3)
    assert capped.n_queries == 2 and sorted(capped.basket.tolist()) == [0, 2]
    assert make_queries(test, old_to_new, max_queries=3).n_queries == 3


def test_metrics_by_hand():
    ranks = np.array([1, 3, 0, 7])  # 0: not recommended
    m = metrics_from_ranks(ranks)
    assert m["hit_rate@1"] == 0.25
    assert m["hit_rate@5"] == 0.5
    assert m["hit_rate@10"] == 0.75
    assert m["precision@5"] == 0.1 and m["recall@5"] == 0.5
    assert m["ndcg@5"] == pytest.approx((1 + 1 / np.log2(4)) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(8)) / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    top = np.array([[5, 2, -1], [1, 2, 3]])
    assert ranks_of_hidden(top, np.array([2, -1])).tolist() == [2, 0]


def tiny_scorers():
    # items 0..4 with counts; rules 0 -> 3 (conf .8), 0 -> 4 (conf .9 on little evidence)
    items = items_table(np.array(["a", "b", "c", "d", "e"], dtype=object),
                        np.array([50, 40, 30, 20, 5]))
    rules = make_rules([([0], [3], 16, 20, 20), ([0], [4], 2, 2, 5)], n=100)
    return (RuleScorer(items, rules, n_baskets=100, scoring={"method": "smoothed",
                                                              "prior_weight": 5, "combine": 0}),
            RuleScorer(items, rules, n_baskets=100, scoring="confidence"))


def test_evaluate_model_and_baselines_by_hand():
    model, max_conf = tiny_scorers()
    test = Baskets.from_lists([["a", "d"], ["b", "a", "e"]], items=["a", "b", "c", "d", "e"])
    q = make_queries(test, np.arange(5, dtype=np.int32), max_queries=None)
    out = evaluate(model, q, baseline_scorer=max_conf)
    # queries: hide a, d | a, b, e (offered: {d}, {a} | {b, e}, {a, e}, {a, b})
    # smoothed: a -> d (16 + 1) / 25 = .68 beats a -> e (2 + .25) / 7 = .32; confidence: e first
    top, from_rules = model.top_items(q.ptr, q.items, 3)
    assert top[1].tolist() == [3, 4, 1] and from_rules[1] == 2
    top, _ = max_conf.top_items(q.ptr, q.items, 3)
    assert top[1].tolist() == [4, 3, 1]
    # hidden item's rank per query; popularity fills what rules leave (a, then b, ...)
    assert ranks_of_hidden(model.top_items(q.ptr, q.items, 3)[0], q.hidden).tolist() == [
        1, 1, 1, 2, 2]
    assert ranks_of_hidden(max_conf.top_items(q.ptr, q.items, 3)[0], q.hidden).tolist() == [
        1, 2, 1, 2, 1]
    assert out["model"]["hit_rate@1"] == pytest.approx(3 / 5)
    assert out["model"]["mrr"] == pytest.approx((3 + 1) / 5)
    assert out["max_confidence"]["ndcg@5"] == pytest.approx((3 + 2 / np.log2(3)) / 5)
    # popularity: a b c d e minus the basket
    top, from_rules = model.top_items(q.ptr, q.items, 2, use_rules=False)
    assert top[0].tolist() == [0, 1] and top[1].tolist() == [1, 2] and top[2].tolist() == [0, 2]
    assert (from_rules == 0).all()
    assert out["popularity"]["fallback_share"] == 1.0
    assert out["random"]["fallback_share"] is None


def test_random_baseline_is_distinct_outside_the_basket_and_seeded():
    q = make_queries(Baskets.from_lists([["a", "b", "c"]] * 50, items=list("abcdefghij")),
                     np.arange(10, dtype=np.int32), max_queries=None)
    top = random_top(q, 10, 5, seed=1)
    for row, i in zip(top, range(q.n_queries), strict=True):
        basket = set(q.items[q.ptr[i]:q.ptr[i + 1]].tolist())
        assert len(set(row.tolist())) == 5 and not basket & set(row.tolist())
    assert np.array_equal(top, random_top(q, 10, 5, seed=1))
    assert not np.array_equal(top, random_top(q, 10, 5, seed=2))
