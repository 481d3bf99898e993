"""Item-kNN, the non-rule baseline, against a case computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from basketry.data import Baskets
from basketry.training.baselines import ItemKNN
from basketry.training.evaluate import RANKERS, Queries, baseline_verdict, evaluate


def _baskets(rows: list[list[int]], n_items: int) -> Baskets:
    indptr = np.cumsum([0, *map(len, rows)]).astype(np.int64)
    indices = np.array([i for row in rows for i in sorted(row)], dtype=np.int32)
    return Baskets(indptr=indptr, indices=indices,
                   items=np.array([f"i{i}" for i in range(n_items)], dtype=object))


# items 0..3 in 4 baskets: n0 = 3, n1 = 2, n2 = 2, n3 = 1; n01 = 2, n02 = 2, n12 = 1
HAND = [[0, 1], [0, 1, 2], [0, 2], [3]]
COS01 = COS02 = 2 / math.sqrt(3 * 2)
COS12 = 1 / math.sqrt(2 * 2)


def _top(knn: ItemKNN, baskets: list[list[int]], k: int) -> tuple[list[list[int]], list[int]]:
    ptr = np.cumsum([0, *map(len, baskets)])
    items = np.array([i for b in baskets for i in b], dtype=np.int32)
    top, scored = knn.top_items(ptr, items, k)
    return top.tolist(), scored.tolist()


def test_neighbours_are_the_cosines_of_co_occurrence():
    knn = ItemKNN.fit(_baskets(HAND, 4))
    assert knn.neighbours_of(0) == [(1, pytest.approx(COS01)), (2, pytest.approx(COS02))]
    assert knn.neighbours_of(1) == [(0, pytest.approx(COS01)), (2, pytest.approx(COS12))]
    assert knn.neighbours_of(2) == [(0, pytest.approx(COS02)), (1, pytest.approx(COS12))]
    assert knn.neighbours_of(3) == []  # bought alone: no neighbour
    # one neighbour kept: the most similar, the lower id on a tie
    assert ItemKNN.fit(_baskets(HAND, 4), neighbours=1).neighbours_of(0) == [
        (1, pytest.approx(COS01))]


def test_a_basket_scores_the_sum_of_its_items_similarities():
    knn = ItemKNN.fit(_baskets(HAND, 4))
    # {1}: 0 (0.816) before 2 (0.5), then the most popular item left (3)
    # {1, 2}: 0 by 0.816 + 0.816; 3 from popularity
    # {}: popularity alone (count desc, id asc)
    top, scored = _top(knn, [[1], [1, 2], []], 3)
    assert top == [[0, 2, 3], [0, 3, -1], [0, 1, 2]]
    assert scored == [2, 1, 0]
    # one neighbour per item: {0} reaches 1 only; 2 comes from popularity
    top, scored = _top(ItemKNN.fit(_baskets(HAND, 4), neighbours=1), [[0]], 2)
    assert top == [[1, 2]] and scored == [1]


def test_item_knn_is_a_ranker_of_the_evaluation_and_named_when_it_wins(tiny_scorer):
    knn = ItemKNN.fit(_baskets(HAND, 4))
    # hide 2 from {1, 2}: kNN answers 0, 2, 3; hide 1 from {0, 1}: 1, 2, 3
    queries = Queries(ptr=np.array([0, 1, 2]), items=np.array([1, 0], dtype=np.int32),
                      hidden=np.array([2, 1], dtype=np.int32), basket=np.array([0, 1]),
                      n_test_baskets=2, n_eligible_baskets=2, n_candidate_queries=2)
    metrics = evaluate(tiny_scorer, queries, baseline_scorer=tiny_scorer, knn=knn)
    assert list(metrics) == list(RANKERS)
    assert metrics["item_knn"]["hit_rate@1"] == 0.5  # 1 first for {0}; 2 second for {1}
    assert metrics["item_knn"]["hit_rate@5"] == 1.0
    metrics["model"]["hit_rate@10"] = 0.25
    metrics["max_confidence"]["hit_rate@10"] = 0.25
    metrics["item_knn"]["hit_rate@10"] = 0.5
    metrics["popularity"]["hit_rate@10"] = 0.25
    assert baseline_verdict(metrics) == [
        "item-kNN beats the model on this data: HR@10 0.5000 vs 0.2500"]
    metrics["model"]["hit_rate@10"] = 0.5
    assert baseline_verdict(metrics) == []


@pytest.fixture
def tiny_scorer():
    from basketry.model import RuleScorer, items_table
    from tests.model.conftest import make_rules

    items = items_table(np.array([f"i{i}" for i in range(4)], dtype=object),
                        np.array([3, 2, 2, 1]))
    return RuleScorer(items, make_rules([([0], [1], 2, 3, 2)], n=4), n_baskets=4)
