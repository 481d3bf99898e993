"""How well a layout serves baskets it was not built from.

Every pair of products bought together in a test basket counts once per basket (so pairs are
weighted by occurrences); pairs with a product the layout does not place are left out (their
share is reported). The measures: the share of those pairs whose two products stand in the same
aisle, and in the same or an adjacent aisle; for the plan, for random layouts with the same
aisle sizes (mean and sd of seeded draws), the current layout when given, and a category-only
layout when categories are given. Pairs are counted sparsely; the measures are numpy dot
products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from basketry.layout.affinity import count_pairs

RANDOM_DRAWS = 10


@dataclass(frozen=True)
class HeldOutPairs:
    i: np.ndarray  # int64 into the layout's items
    j: np.ndarray
    count: np.ndarray  # float64 occurrences
    n_baskets: int
    pairs_all: int  # pair occurrences in the test baskets, placed or not

    @property
    def total(self) -> float:
        return float(self.count.sum())


def held_out_pairs(baskets: object, index: dict[str, int]) -> HeldOutPairs:
    """The co-purchased pairs of ``basketry.data.Baskets`` over the layout's items."""
    indptr = np.asarray(baskets.indptr, dtype=np.int64)  # type: ignore[attr-defined]
    indices = np.asarray(baskets.indices)  # type: ignore[attr-defined]
    names = baskets.items  # type: ignore[attr-defined]
    to_layout = np.fromiter((index.get(str(x), -1) for x in names), dtype=np.int64,
                            count=len(names))
    sizes = np.diff(indptr)
    pairs_all = int((sizes * (sizes - 1) // 2).sum())
    mapped = to_layout[indices]
    keep = mapped >= 0
    basket = np.repeat(np.arange(sizes.shape[0]), sizes)[keep]
    new_ptr = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(basket, minlength=sizes.shape[0]), out=new_ptr[1:])
    upper = count_pairs(new_ptr, mapped[keep], len(index)).tocoo()
    return HeldOutPairs(upper.row.astype(np.int64), upper.col.astype(np.int64),
                     upper.data.astype(np.float64), int(sizes.shape[0]), pairs_all)


def shares(pairs: HeldOutPairs, aisle: np.ndarray) -> tuple[float, float]:
    """(same aisle, same or adjacent aisle) shares of the pairs; aisle -1 is nowhere."""
    if pairs.total == 0:
        return 0.0, 0.0
    ai, aj = aisle[pairs.i], aisle[pairs.j]
    placed = (ai >= 0) & (aj >= 0)
    d = np.abs(ai - aj)
    same = float(pairs.count @ (placed & (d == 0))) / pairs.total
    near = float(pairs.count @ (placed & (d <= 1))) / pairs.total
    return same, near


def random_shares(pairs: HeldOutPairs, aisle: np.ndarray, draws: int = RANDOM_DRAWS,
                  seed: int = 0) -> dict[str, float]:
    """Mean and sd of the shares over random layouts with the same aisle sizes (the plan's
    assignment shuffled among its products)."""
    rng = np.random.default_rng(seed)
    placed = np.flatnonzero(aisle >= 0)
    got = []
    for _ in range(draws):
        shuffled = aisle.copy()
        shuffled[placed] = aisle[placed][rng.permutation(placed.shape[0])]
        got.append(shares(pairs, shuffled))
    arr = np.asarray(got)
    same, near = expected_random_shares(pairs, aisle)
    return {"same_aisle": float(arr[:, 0].mean()), "same_aisle_sd": float(arr[:, 0].std(ddof=1)),
            "same_or_adjacent": float(arr[:, 1].mean()),
            "same_or_adjacent_sd": float(arr[:, 1].std(ddof=1)), "draws": draws,
            "same_aisle_expected": same, "same_or_adjacent_expected": near}


def expected_random_shares(pairs: HeldOutPairs, aisle: np.ndarray) -> tuple[float, float]:
    """The exact mean of ``random_shares`` over all shuffles (the draws' mean, without their
    noise): two placed products share an aisle with probability sum s(s-1) / (N(N-1)) for
    aisle sizes s summing to N, and stand in adjacent aisles with 2 sum s_a s_a+1 / (N(N-1))."""
    placed = aisle >= 0
    n = int(placed.sum())
    if pairs.total == 0 or n < 2:
        return 0.0, 0.0
    s = np.bincount(aisle[placed]).astype(np.float64)
    both = float(pairs.count @ (placed[pairs.i] & placed[pairs.j])) / pairs.total
    p_same = float((s * (s - 1)).sum()) / (n * (n - 1))
    p_next = 2.0 * float((s[:-1] * s[1:]).sum()) / (n * (n - 1))
    return both * p_same, both * (p_same + p_next)


def category_layout(category: np.ndarray, popularity: np.ndarray,
                    capacities: Sequence[int]) -> np.ndarray:
    """A category-only layout: products sorted by category (largest categories first, products
    without one last), most popular first within each, filled into the aisles in order."""
    n = category.shape[0]
    sizes = np.bincount(category[category >= 0]) if (category >= 0).any() else np.zeros(0)
    rank = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    order_of_cat = np.empty(sizes.shape[0], dtype=np.int64)
    order_of_cat[np.argsort(-sizes, kind="stable")] = np.arange(sizes.shape[0])
    rank[category >= 0] = order_of_cat[category[category >= 0]]
    order = np.lexsort((-popularity, rank))
    bounds = np.cumsum(np.asarray(capacities, dtype=np.int64))
    aisle = np.full(n, -1, dtype=np.int64)
    aisle[order] = np.searchsorted(bounds, np.arange(n), side="right")
    aisle[aisle >= len(bounds)] = -1
    return aisle


def evaluate(pairs: HeldOutPairs, aisle: np.ndarray, *, seed: int = 0,
             draws: int = RANDOM_DRAWS, current: np.ndarray | None = None,
             category_only: np.ndarray | None = None) -> dict[str, object]:
    """The evaluation document stored in the plan (``evaluation``)."""
    same, near = shares(pairs, aisle)
    rnd = random_shares(pairs, aisle, draws, seed)
    out: dict[str, object] = {
        "test_baskets": pairs.n_baskets,
        "pair_occurrences": int(pairs.total),
        "placed_share": pairs.total / pairs.pairs_all if pairs.pairs_all else 0.0,
        "layout": {"same_aisle": same, "same_or_adjacent": near},
        "random": rnd,
        "same_aisle_vs_random": same / rnd["same_aisle"] if rnd["same_aisle"] else None,
    }
    for name, other in (("current", current), ("category_only", category_only)):
        if other is not None:
            o_same, o_near = shares(pairs, other)
            out[name] = {"same_aisle": o_same, "same_or_adjacent": o_near}
            out[f"same_aisle_vs_{name}"] = same / o_same if o_same else None
    return out
