"""Offline evaluation: hide one item of a test basket, recommend from the rest, see where the
hidden item lands. The model is scored with the model contract's own scoring
(``RuleScorer.top_items``, the batch form of ``recommend``), so the figures are those of the
served model. The protocol is specified in docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from basketry.data import Baskets
from basketry.model import RuleScorer
from basketry.model.protocol import (
    KS,
    MAX_HIDDEN_PER_BASKET,
    MAX_QUERIES,
    metrics_from_ranks,
    plan_queries,
    ranks_of_hidden,
)
from basketry.training.baselines import ItemKNN

#: The rankers compared, in report order.
RANKERS = ("model", "max_confidence", "item_knn", "popularity", "random")
#: The baselines the model is compared with in the verdict (``baseline_verdict``).
BASELINES = ("max_confidence", "item_knn", "popularity")
_NAMES = {"max_confidence": "max-confidence", "item_knn": "item-kNN",
          "popularity": "popularity"}


@dataclass(frozen=True)
class Queries:
    """Evaluation queries: query ``q`` hides ``hidden[q]`` (a model item id, -1 when the model
    does not know the item) and offers ``items[ptr[q]:ptr[q + 1]]`` (the basket's other items
    that the model knows, ids ascending)."""

    ptr: np.ndarray
    items: np.ndarray
    hidden: np.ndarray
    basket: np.ndarray  # index of the query's basket in the test part
    n_test_baskets: int
    n_eligible_baskets: int  # test baskets with at least two items
    n_candidate_queries: int  # queries before sampling

    @property
    def n_queries(self) -> int:
        return int(self.hidden.shape[0])

    def describe(self) -> dict[str, Any]:
        return {
            "n_test_baskets": self.n_test_baskets,
            "n_eligible_baskets": self.n_eligible_baskets,
            "n_candidate_queries": self.n_candidate_queries,
            "n_queries": self.n_queries,
            "hidden_unknown_to_model": int((self.hidden < 0).sum()),
        }


@numba.njit(cache=True)
def _build_queries(indptr, indices, old_to_new, q_basket, q_pos):  # pragma: no cover - jit
    n_q = q_basket.shape[0]
    ptr = np.zeros(n_q + 1, dtype=np.int64)
    for q in range(n_q):
        b = q_basket[q]
        known = 0
        for p in range(indptr[b], indptr[b + 1]):
            if p - indptr[b] != q_pos[q] and old_to_new[indices[p]] >= 0:
                known += 1
        ptr[q + 1] = ptr[q] + known
    items = np.empty(ptr[n_q], dtype=np.int32)
    hidden = np.empty(n_q, dtype=np.int32)
    for q in range(n_q):
        b = q_basket[q]
        w = ptr[q]
        for p in range(indptr[b], indptr[b + 1]):
            new = old_to_new[indices[p]]
            if p - indptr[b] == q_pos[q]:
                hidden[q] = new
            elif new >= 0:
                items[w] = new  # ids ascending: the renumbering keeps the order
                w += 1
    return ptr, items, hidden


def make_queries(
    test: Baskets,
    old_to_new: np.ndarray,
    *,
    max_queries: int | None = MAX_QUERIES,
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
    seed: int = 0,
) -> Queries:
    """The queries of the protocol (``basketry.model.protocol.plan_queries``) over the test
    baskets, in the model's ids (``old_to_new``: -1 for an item the model does not know)."""
    plan = plan_queries(test.sizes, max_queries=max_queries,
                        max_hidden_per_basket=max_hidden_per_basket, seed=seed)
    q_basket, q_pos = plan.basket, plan.pos
    ptr, items, hidden = _build_queries(
        test.indptr, test.indices, np.asarray(old_to_new, dtype=np.int32),
        q_basket.astype(np.int64), q_pos.astype(np.int64))
    return Queries(ptr=ptr, items=items, hidden=hidden, basket=q_basket,
                   n_test_baskets=test.n_baskets, n_eligible_baskets=plan.n_eligible_baskets,
                   n_candidate_queries=plan.n_candidate_queries)


@numba.njit(cache=True)
def _random_top(ptr, items, n_items, k, seed):  # pragma: no cover - jit
    np.random.seed(seed)
    n_q = ptr.shape[0] - 1
    out = np.full((n_q, k), -1, dtype=np.int64)
    taken = np.zeros(n_items, dtype=np.bool_)
    for q in range(n_q):
        basket = items[ptr[q] : ptr[q + 1]]
        for i in basket:
            taken[i] = True
        free = n_items - basket.shape[0]
        m = 0
        while m < k and m < free:
            item = np.random.randint(0, n_items)
            if not taken[item]:
                taken[item] = True
                out[q, m] = item
                m += 1
        for i in basket:
            taken[i] = False
        for t in range(m):
            taken[out[q, t]] = False
    return out


def random_top(queries: Queries, n_items: int, k: int, seed: int = 0) -> np.ndarray:
    """The random baseline: ``k`` distinct items drawn uniformly (seeded) from the model's
    items that are not in the basket."""
    return _random_top(queries.ptr, queries.items, int(n_items), int(k), int(seed))


def ranker_metrics(
    top: np.ndarray, queries: Queries, n_items: int, from_rules: np.ndarray | None = None
) -> dict[str, float | None]:
    """All metrics of one ranker's answers ``top`` (n_queries, k)."""
    out: dict[str, float | None] = dict(metrics_from_ranks(ranks_of_hidden(top, queries.hidden)))
    shown = np.unique(top[top >= 0])
    out["item_coverage"] = float(shown.shape[0]) / max(n_items, 1)
    if from_rules is None:
        out["fallback_share"] = None
        out["fallback_item_share"] = None
    else:
        k = top.shape[1]
        n = max(queries.n_queries, 1)
        out["fallback_share"] = float((from_rules < k).sum()) / n
        out["fallback_item_share"] = float((k - from_rules).sum()) / (n * max(k, 1))
    return out


def evaluate(
    scorer: RuleScorer,
    queries: Queries,
    *,
    baseline_scorer: RuleScorer | None = None,
    knn: ItemKNN | None = None,
    seed: int = 0,
    ks: tuple[int, ...] = KS,
) -> dict[str, dict[str, float | None]]:
    """Metrics of the model (``scorer``, as it will be served), the max-confidence ranking
    (``baseline_scorer``: the same rules scored by confidence alone), item-kNN (``knn``, fitted
    on the same training baskets), popularity and random."""
    k = max(ks)
    n_items = len(scorer.items)
    out: dict[str, dict[str, float | None]] = {}
    top, from_rules = scorer.top_items(queries.ptr, queries.items, k)
    out["model"] = ranker_metrics(top, queries, n_items, from_rules)
    if baseline_scorer is not None:
        top, from_rules = baseline_scorer.top_items(queries.ptr, queries.items, k)
        out["max_confidence"] = ranker_metrics(top, queries, n_items, from_rules)
    if knn is not None:
        top, scored = knn.top_items(queries.ptr, queries.items, k)
        out["item_knn"] = ranker_metrics(top, queries, n_items, scored)
    top, from_rules = scorer.top_items(queries.ptr, queries.items, k, use_rules=False)
    out["popularity"] = ranker_metrics(top, queries, n_items, from_rules)
    out["random"] = ranker_metrics(random_top(queries, n_items, k, seed), queries, n_items)
    return out


def baseline_verdict(metrics: dict[str, dict[str, float | None]],
                     metric: str = "hit_rate@10") -> list[str]:
    """One plain sentence per baseline that beats the model on ``metric`` (none when the model
    is at least as good as every baseline measured)."""
    model = metrics.get("model", {}).get(metric)
    if model is None:
        return []
    label = metric.replace("hit_rate@", "HR@")
    out = []
    for name in BASELINES:
        value = metrics.get(name, {}).get(metric)
        if value is not None and value > model:
            out.append(f"{_NAMES[name]} beats the model on this data: {label} {value:.4f} "
                       f"vs {model:.4f}")
    return out
