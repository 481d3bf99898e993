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

#: Cut-offs of the metrics; the longest is how many items each ranker is asked for.
KS = (1, 5, 10)
#: The rankers compared, in report order.
RANKERS = ("model", "max_confidence", "popularity", "random")
#: Default bound on the number of (basket, hidden item) queries, for speed.
MAX_QUERIES = 50_000
#: Default bound on the hidden items per test basket (a seeded sample of the basket's items).
MAX_HIDDEN_PER_BASKET = 10


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
    """The queries of the protocol: every item of every test basket with at least two items is
    hidden once, or a seeded sample when a bound is given (per basket first, then overall)."""
    sizes = test.sizes
    eligible = np.flatnonzero(sizes >= 2)
    rng = np.random.default_rng(seed)
    q_basket = np.repeat(eligible, sizes[eligible])
    starts = np.repeat(np.cumsum(sizes[eligible]) - sizes[eligible], sizes[eligible])
    q_pos = np.arange(q_basket.shape[0], dtype=np.int64) - starts
    if max_hidden_per_basket is not None and q_basket.shape[0]:
        # a seeded random priority per query; keep the lowest max_hidden_per_basket per basket
        priority = rng.random(q_basket.shape[0])
        order = np.lexsort((priority, q_basket))
        first = np.searchsorted(q_basket[order], q_basket[order], side="left")
        keep = np.zeros(q_basket.shape[0], dtype=bool)
        keep[order[np.arange(order.shape[0]) - first < max_hidden_per_basket]] = True
        q_basket, q_pos = q_basket[keep], q_pos[keep]
    n_candidates = int(q_basket.shape[0])
    if max_queries is not None and n_candidates > max_queries:
        chosen = np.sort(rng.choice(n_candidates, size=max_queries, replace=False))
        q_basket, q_pos = q_basket[chosen], q_pos[chosen]
    ptr, items, hidden = _build_queries(
        test.indptr, test.indices, np.asarray(old_to_new, dtype=np.int32),
        q_basket.astype(np.int64), q_pos.astype(np.int64))
    return Queries(ptr=ptr, items=items, hidden=hidden, basket=q_basket,
                   n_test_baskets=test.n_baskets, n_eligible_baskets=int(eligible.shape[0]),
                   n_candidate_queries=n_candidates)


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


def ranks_of_hidden(top: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """1-based position of each query's hidden item in its answer; 0 when absent."""
    match = (top == hidden[:, None]) & (hidden[:, None] >= 0)
    found = match.any(axis=1)
    return np.where(found, match.argmax(axis=1) + 1, 0)


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """HR@k, precision@k, recall@k, NDCG@k for each k and MRR (within the longest k), from the
    1-based ranks of the hidden items (0: not recommended). One relevant item per query, so
    precision@k = HR@k / k and recall@k = HR@k; the ideal DCG is 1."""
    n = max(int(ranks.shape[0]), 1)
    out: dict[str, float] = {}
    hit_any = ranks > 0
    for k in ks:
        hit = hit_any & (ranks <= k)
        hr = float(hit.sum()) / n
        out[f"hit_rate@{k}"] = hr
        out[f"precision@{k}"] = hr / k
        out[f"recall@{k}"] = hr
        gain = np.where(hit, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0)
        out[f"ndcg@{k}"] = float(gain.sum()) / n
    within = hit_any & (ranks <= max(ks))
    out["mrr"] = float(np.where(within, 1.0 / np.maximum(ranks, 1), 0.0).sum()) / n
    return out


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
    seed: int = 0,
    ks: tuple[int, ...] = KS,
) -> dict[str, dict[str, float | None]]:
    """Metrics of the model (``scorer``, as it will be served), the max-confidence ranking
    (``baseline_scorer``: the same rules scored by confidence alone), popularity and random."""
    k = max(ks)
    n_items = len(scorer.items)
    out: dict[str, dict[str, float | None]] = {}
    top, from_rules = scorer.top_items(queries.ptr, queries.items, k)
    out["model"] = ranker_metrics(top, queries, n_items, from_rules)
    if baseline_scorer is not None:
        top, from_rules = baseline_scorer.top_items(queries.ptr, queries.items, k)
        out["max_confidence"] = ranker_metrics(top, queries, n_items, from_rules)
    top, from_rules = scorer.top_items(queries.ptr, queries.items, k, use_rules=False)
    out["popularity"] = ranker_metrics(top, queries, n_items, from_rules)
    out["random"] = ranker_metrics(random_top(queries, n_items, k, seed), queries, n_items)
    return out
