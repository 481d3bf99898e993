"""Synthetic transaction histories for scale tests: Zipf item popularity, planted co-purchase
patterns, and timestamps.

Item popularity is Zipf-Mandelbrot: the item of popularity rank ``r`` (1 = most popular) is
drawn with probability proportional to ``1 / (r + zipf_offset) ** zipf_exponent``. The offset
flattens the head as in real shops: with the defaults (exponent 1, offset 10, 100k items, 8
draws per basket) the most popular item is in about 8% of the baskets and the 100th in about
1% (a plain Zipf law, offset 0, would put the top item in about half of all baskets, which no
real shop sees: in public grocery and retail data the top item is in 5-15% of the baskets).

Everything is drawn with numpy's PCG64 from one seed, so the same arguments give the same data.
Changes of known kind, size and day can be planted in the history (``drifts``: see
:mod:`basketry.data.synthetic_drift`), to measure drift detection against a known truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from basketry.data.baskets import Baskets
from basketry.data.synthetic_drift import (
    TOP_ITEMS,
    Catalogue,
    Drift,
    Entries,
    apply_drifts,
    drift_problems,
)


@dataclass(frozen=True)
class SyntheticSpec:
    n_baskets: int = 1_000_000
    n_items: int = 100_000
    mean_basket_size: float = 8.0
    zipf_exponent: float = 1.0
    zipf_offset: float = 10.0  # Zipf-Mandelbrot: weight 1 / (rank + offset) ** exponent
    n_patterns: int = 500
    pattern_size: tuple[int, int] = (2, 5)
    pattern_rate: float = 0.3  # share of baskets that contain one planted pattern
    days: int = 365
    n_customers: int = 0  # 0: no customer column
    seed: int = 0
    drifts: tuple[Drift, ...] = ()  # planted changes, applied in this order
    # planted product groups (the right answer of a shelf layout): the catalogue's first
    # groups * group_size items of a random order split into groups; a share group_rate of the
    # baskets also holds 2 + Poisson(group_draws - 2) items of one group drawn uniformly
    groups: int = 0
    group_size: int = 0  # 0: n_items // groups (every item in a group)
    group_rate: float = 0.5
    group_draws: float = 3.0

    def validate(self) -> None:
        problems = []
        if self.n_baskets < 1:
            problems.append("n_baskets must be >= 1")
        if self.n_items < 2:
            problems.append("n_items must be >= 2")
        if not self.zipf_offset >= 0:
            problems.append("zipf_offset must be >= 0")
        if self.mean_basket_size < 1:
            problems.append("mean_basket_size must be >= 1")
        if not 0 <= self.pattern_rate <= 1:
            problems.append("pattern_rate must be in [0, 1]")
        lo, hi = self.pattern_size
        if not 1 <= lo <= hi <= self.n_items:
            problems.append("pattern_size must be 1 <= low <= high <= n_items")
        if self.days < 1:
            problems.append("days must be >= 1")
        if self.groups < 0:
            problems.append("groups must be >= 0")
        if self.groups:
            size = self.group_size or self.n_items // self.groups
            if size < 2 or self.groups * size > self.n_items:
                problems.append("groups of at least 2 items must fit in n_items "
                                "(groups * group_size <= n_items)")
            if not 0 <= self.group_rate <= 1:
                problems.append("group_rate must be in [0, 1]")
            if not self.group_draws >= 2:
                problems.append("group_draws must be >= 2")
        problems += drift_problems(self.drifts, self.days, self.mean_basket_size)
        if problems:
            raise ValueError("; ".join(problems))


@numba.njit(cache=True)
def _sort_unique_segments(indptr: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each CSR row and drop repeated values; returns the compacted (indptr, values)."""
    n = indptr.shape[0] - 1
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    out = np.empty(values.shape[0], dtype=np.int32)
    pos = 0
    for b in range(n):
        row = np.sort(values[indptr[b] : indptr[b + 1]])
        last = -1
        for v in row:
            if v != last:
                out[pos] = v
                pos += 1
                last = v
        out_ptr[b + 1] = pos
    return out_ptr, out[:pos].copy()


def generate(spec: SyntheticSpec) -> Baskets:
    """Draw a synthetic history as ``Baskets`` (items named ``i<id>``, baskets in time order)."""
    spec.validate()
    rng = np.random.Generator(np.random.PCG64(spec.seed))
    n, m = spec.n_baskets, spec.n_items

    # item popularity: Zipf over a random permutation of the catalogue
    ranks = np.arange(1, m + 1, dtype=np.float64) + spec.zipf_offset
    weights = 1.0 / ranks**spec.zipf_exponent
    rank_of = rng.permutation(m)  # item j has popularity rank rank_of[j] + 1
    cdf = np.cumsum(weights[rank_of])
    cdf /= cdf[-1]

    # planted patterns: random itemsets whose own popularity is Zipf too
    lo, hi = spec.pattern_size
    sizes = rng.integers(lo, hi + 1, size=spec.n_patterns)
    pattern_ptr = np.zeros(spec.n_patterns + 1, dtype=np.int64)
    np.cumsum(sizes, out=pattern_ptr[1:])
    pattern_items = np.searchsorted(cdf, rng.random(int(pattern_ptr[-1]))).astype(np.int32)
    pattern_cdf = np.cumsum(1.0 / np.arange(1, spec.n_patterns + 1) ** 1.0)
    pattern_cdf /= pattern_cdf[-1]

    # random items per basket (>= 1), plus the items of one planted pattern for some baskets
    own = 1 + rng.poisson(spec.mean_basket_size - 1, size=n).astype(np.int64)
    planted = np.full(n, -1, dtype=np.int64)
    if spec.n_patterns:
        chosen = rng.random(n) < spec.pattern_rate
        planted[chosen] = np.searchsorted(pattern_cdf, rng.random(int(chosen.sum())))
    extra = np.where(planted >= 0, sizes[np.maximum(planted, 0)], 0)
    lengths = own + extra
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    values = np.empty(int(indptr[-1]), dtype=np.int32)
    # positions of each basket's own draws and of its pattern items
    own_pos = np.arange(int(own.sum())) + np.repeat(indptr[:-1] - np.concatenate(
        ([0], np.cumsum(own)[:-1])), own)
    values[own_pos] = np.searchsorted(cdf, rng.random(own_pos.shape[0]))
    with_pattern = np.flatnonzero(planted >= 0)
    if with_pattern.size:
        p = planted[with_pattern]
        counts = sizes[p]
        starts = np.repeat(indptr[with_pattern] + own[with_pattern], counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        values[starts + within] = pattern_items[np.repeat(pattern_ptr[p], counts) + within]
    offsets = np.sort(rng.integers(0, spec.days * 86_400, size=n))
    n_items, planted_drifts = m, []
    if spec.drifts:
        is_own = np.zeros(values.shape[0], dtype=bool)
        is_own[own_pos] = True
        pattern_of = np.full(values.shape[0], -1, dtype=np.int64)
        pattern_of[~is_own] = np.repeat(planted, lengths)[~is_own]
        entries = Entries(np.repeat(np.arange(n, dtype=np.int64), lengths), values, is_own,
                          pattern_of)
        top = np.argsort(rank_of)[:TOP_ITEMS]
        catalogue = Catalogue(cdf, top, weights[rank_of[top]] / weights.sum(), pattern_ptr,
                              pattern_items, m, spec.mean_basket_size)
        first = np.searchsorted(offsets, [d.day * 86_400 for d in spec.drifts])
        n_items, planted_drifts = apply_drifts(entries, first, spec.drifts, catalogue, n,
                                               spec.seed)
        order = np.argsort(entries.basket, kind="stable")
        values = entries.item[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(entries.basket, minlength=n), out=indptr[1:])
    group_members = None
    if spec.groups:
        indptr, values, group_members = _plant_groups(spec, indptr, values)
    indptr, indices = _sort_unique_segments(indptr, values)

    start = np.datetime64("2024-01-01T00:00:00", "s")
    timestamps = (start + offsets.astype("timedelta64[s]")).astype("datetime64[ns]")
    customers = None
    if spec.n_customers:
        ids = rng.integers(0, spec.n_customers, size=n)
        customers = np.array([f"c{x}" for x in ids], dtype=object)
    items = np.array([f"i{i}" for i in range(n_items)], dtype=object)
    report: dict = {
        "generated": n,
        "patterns": [
            [str(items[i]) for i in np.unique(pattern_items[a:b])]
            for a, b in zip(pattern_ptr[:-1].tolist(), pattern_ptr[1:].tolist(), strict=True)
        ],
    }
    if planted_drifts:
        report["drifts"] = planted_drifts
    if group_members is not None:
        report["groups"] = [[str(items[i]) for i in sorted(g)] for g in group_members.tolist()]
    return Baskets(
        indptr=indptr,
        indices=indices,
        items=items,
        timestamps=timestamps,
        basket_ids=None,
        customers=customers,
        source=f"synthetic(seed={spec.seed}, baskets={n}, items={m})",
        report=report,
    )


def _plant_groups(spec: SyntheticSpec, indptr: np.ndarray,
                  values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add the planted groups' draws to the baskets: (indptr, values, members per group).
    A random stream of its own, so the rest of the data is what it is without groups."""
    rng = np.random.Generator(np.random.PCG64([spec.seed, 0x6772]))
    n = indptr.shape[0] - 1
    size = spec.group_size or spec.n_items // spec.groups
    members = rng.permutation(spec.n_items)[: spec.groups * size].reshape(spec.groups, size)
    chosen = np.flatnonzero(rng.random(n) < spec.group_rate)
    group = rng.integers(0, spec.groups, size=chosen.shape[0])
    k = np.minimum(2 + rng.poisson(spec.group_draws - 2, size=chosen.shape[0]), size)
    picks = members[np.repeat(group, k), rng.integers(0, size, size=int(k.sum()))]
    basket = np.concatenate([np.repeat(np.arange(n), np.diff(indptr)), np.repeat(chosen, k)])
    merged = np.concatenate([values, picks.astype(values.dtype)])
    order = np.argsort(basket, kind="stable")
    new_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(basket, minlength=n), out=new_ptr[1:])
    return new_ptr, merged[order], members
