"""The scoring search of train's tuning: every method of ``TUNING_METHODS`` is tried, and the
one that ranks the hidden items best on the validation queries is chosen."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from basketry.model import items_table
from basketry.training.evaluate import Queries
from basketry.training.pipeline import TUNING_METHODS, MinedRules, search_scoring
from tests.model.conftest import make_rules


def _mined(names: list[str], counts: list[int], rules: list, n: int) -> MinedRules:
    items = items_table(np.array(names, dtype=object), np.array(counts))
    return MinedRules(miner=SimpleNamespace(n_baskets_=n), items=items,
                      rules=make_rules(rules, n=n))


def _queries(baskets: list[list[int]], hidden: list[int]) -> Queries:
    ptr = np.cumsum([0, *map(len, baskets)])
    return Queries(ptr=ptr, items=np.array([i for b in baskets for i in b], dtype=np.int32),
                   hidden=np.array(hidden, dtype=np.int32), basket=np.arange(len(hidden)),
                   n_test_baskets=len(hidden), n_eligible_baskets=len(hidden),
                   n_candidate_queries=len(hidden))


def test_a_popular_item_beats_a_weak_rule_and_one_scale_is_chosen():
    # a -> b has confidence 0.3, below b's base rate 0.35; p is in 60 % of the baskets and is
    # what the validation baskets {a} were hiding three times out of four
    mined = _mined(["a", "b", "p"], [50, 35, 60], [([0], [1], 15, 50, 35)], n=100)
    chosen, tried = search_scoring(mined, _queries([[0]] * 4, [2, 2, 2, 1]))
    assert chosen["method"] == "one_scale"  # lift_product ties with it: the earlier is kept
    assert {t["method"] for t in tried} == set(TUNING_METHODS)
    best = {m: max(t["hit_rate@10"] + t["ndcg@10"] for t in tried if t["method"] == m)
            for m in TUNING_METHODS}
    assert best["one_scale"] == best["lift_product"] > best["smoothed"]


def test_evidence_of_several_rules_multiplies_and_lift_product_is_chosen():
    # basket {a, c, d}: each points to y (confidence 0.05, base rate 0.01: lift 5), a alone to z
    # (confidence 0.3, base rate 0.2: lift 1.5); the hidden item is y. Only the product of the
    # lifts (0.01 * 5 ** 3 = 1.25 against 0.2 * 1.5 = 0.3) puts y first.
    rules = [([0], [3], 5, 100, 10), ([1], [3], 5, 100, 10), ([2], [3], 5, 100, 10),
             ([0], [4], 30, 100, 200)]
    mined = _mined(["a", "c", "d", "y", "z"], [100, 100, 100, 10, 200], rules, n=1000)
    chosen, tried = search_scoring(mined, _queries([[0, 1, 2]], [3]))
    assert chosen["method"] == "lift_product" and chosen["combine"] > 0
    assert max(t["ndcg@10"] for t in tried if t["method"] != "lift_product") < 1.0
    assert mined.scorer(chosen).recommend(["a", "c", "d"], k=1).items[0].item == "y"
