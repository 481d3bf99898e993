"""The hide-one protocol: how a model is measured, offline on a test split and online on the
orders customers completed. Both sides use these functions, so an offline HR@10 and an online
HR@10 are the same measure (docs/evaluation.md, docs/monitoring.md).

A *query* hides one item of a basket with at least two items and offers the others; the model's
top-k answer is searched for the hidden item. Everything here is array code (numpy): the serving
install has no numba, and the monitoring side must run where the service runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Cut-offs of the metrics; the longest is how many items each ranker is asked for.
KS = (1, 5, 10)
#: Default bound on the number of (basket, hidden item) queries, for speed.
MAX_QUERIES = 50_000
#: Default bound on the hidden items per basket (a seeded sample of the basket's items).
MAX_HIDDEN_PER_BASKET = 10
#: The normal quantile of the 95% intervals.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class QueryPlan:
    """Which item of which basket each query hides: basket ``basket[q]``, position ``pos[q]``."""

    basket: np.ndarray
    pos: np.ndarray
    n_eligible_baskets: int  # baskets with at least two items
    n_candidate_queries: int  # queries before the overall bound


def plan_queries(sizes: np.ndarray, *, max_queries: int | None = MAX_QUERIES,
                 max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET,
                 seed: int = 0) -> QueryPlan:
    """Every item of every basket of at least two items is hidden once, or a seeded sample when
    a bound is given (per basket first, then overall)."""
    sizes = np.asarray(sizes, dtype=np.int64)
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
    return QueryPlan(q_basket.astype(np.int64), q_pos.astype(np.int64),
                     int(eligible.shape[0]), n_candidates)


def build_queries(indptr: np.ndarray, ids: np.ndarray, plan: QueryPlan
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The queries of ``plan`` over baskets ``ids[indptr[b]:indptr[b + 1]]`` (model item ids,
    -1 for an item the model does not know, ascending within a basket): ``(ptr, items,
    hidden)`` where query ``q`` offers ``items[ptr[q]:ptr[q + 1]]`` (the basket's other known
    items, ascending) and hides ``hidden[q]`` (-1: unknown to the model, a miss for any
    ranker)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    start = indptr[plan.basket]
    size = indptr[plan.basket + 1] - start
    hidden = ids[start + plan.pos].astype(np.int32)
    # every (query, position) pair, then the hidden position and the unknown items dropped
    query = np.repeat(np.arange(plan.basket.shape[0]), size)
    offset = np.arange(query.shape[0]) - np.repeat(np.cumsum(size) - size, size)
    values = ids[np.repeat(start, size) + offset]
    keep = (offset != plan.pos[query]) & (values >= 0)
    ptr = np.zeros(plan.basket.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(query[keep], minlength=plan.basket.shape[0]), out=ptr[1:])
    return ptr, values[keep].astype(np.int32), hidden


def ranks_of_hidden(top: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """1-based position of each query's hidden item in its answer; 0 when absent."""
    match = (top == hidden[:, None]) & (hidden[:, None] >= 0)
    found = match.any(axis=1)
    return np.where(found, match.argmax(axis=1) + 1, 0)


def gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Each query's DCG@k with one relevant item: 1/log2(rank + 1) when ranked within k."""
    hit = (ranks > 0) & (ranks <= k)
    return np.where(hit, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0)


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """HR@k, precision@k, recall@k, NDCG@k for each k and MRR (within the longest k), from the
    1-based ranks of the hidden items (0: not recommended). One relevant item per query, so
    precision@k = HR@k / k and recall@k = HR@k; the ideal DCG is 1."""
    n = max(int(ranks.shape[0]), 1)
    out: dict[str, float] = {}
    hit_any = ranks > 0
    for k in ks:
        hr = float((hit_any & (ranks <= k)).sum()) / n
        out[f"hit_rate@{k}"] = hr
        out[f"precision@{k}"] = hr / k
        out[f"recall@{k}"] = hr
        out[f"ndcg@{k}"] = float(gains(ranks, k).sum()) / n
    within = hit_any & (ranks <= max(ks))
    out["mrr"] = float(np.where(within, 1.0 / np.maximum(ranks, 1), 0.0).sum()) / n
    return out


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (``None`` without observations): unlike the
    normal approximation it stays inside [0, 1] and is honest for small ``n`` and for
    proportions near 0 or 1, which a day of a small shop's orders gives."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(total: float, total_sq: float, n: float, z: float = Z95
                  ) -> tuple[float, float] | None:
    """A normal-approximation interval of a mean in [0, 1] (NDCG) from its sum and sum of
    squares, clipped to [0, 1] (``None`` without observations)."""
    if n <= 0:
        return None
    mean = total / n
    variance = max(total_sq / n - mean * mean, 0.0)
    half = z * math.sqrt(variance / n) if n > 1 else 1.0
    return max(0.0, mean - half), min(1.0, mean + half)
