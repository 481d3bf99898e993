"""Bounds on how many frequent itemsets mining will find, from the item counts alone.

Both are cheap (a few passes over the baskets with numpy) and exact bounds, not guesses:

* upper: a frequent k-itemset occurs in >= ``min_count`` baskets, so there are at most
  ``sum over baskets of C(f_b, k) / min_count`` of them (``f_b``: the basket's frequent items),
  and at most ``C(m, k)`` (``m`` frequent items); no k-itemset is frequent once that sum is
  below ``min_count``, and then no longer one either;
* lower: a set ``T`` of items found together in >= ``min_count`` baskets makes every subset of
  ``T`` frequent. ``T`` is grown greedily, each time by the item most frequent among the
  baskets that hold all of ``T`` so far (a long basket repeated ``min_count`` times, or one
  basket at count 1, gives all its items).
"""

from __future__ import annotations

import math

import numpy as np

from basketry.mining._params import Limit
from basketry.mining.errors import BudgetExceeded


def row_sums(indptr: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Per CSR row, how many of its entries ``flags`` (bool, one per entry) marks (int64)."""
    full = np.diff(indptr) > 0
    out = np.zeros(full.shape[0], dtype=np.int64)
    if flags.size:
        # over the non-empty rows, whose starts increase, each sum runs to the row's end; no
        # int64 copy of every entry (itemsets may hold billions)
        out[full] = np.add.reduceat(flags, indptr[:-1][full], dtype=np.int64)
    return out


def frequent_sizes(indptr: np.ndarray, indices: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Per basket, how many of its items ``use`` marks (int64)."""
    return row_sums(indptr, use[indices])


def upper_levels(sizes: np.ndarray, m: int, min_count: int, max_len: int | None) -> np.ndarray:
    """Upper bounds on the number of frequent itemsets of each length 1, 2, ... (float64, may
    be inf; ends at the first length none can have) given the baskets' frequent-item counts
    ``sizes`` and ``m`` frequent items."""
    if m == 0 or sizes.size == 0:
        return np.zeros(0)
    hist = np.bincount(sizes)
    s = np.flatnonzero(hist).astype(np.float64)
    mult = hist[hist > 0].astype(np.float64)
    top = int(s[-1]) if max_len is None else min(max_len, int(s[-1]))
    levels = [float(m)]
    # C(s, k) and C(m, k) built up k by k in floats: they overflow to inf, never wrap; the
    # 1e-9 margin covers the rounding of ~k float operations, so the bound stays an upper one
    c_s = s.copy()
    c_m = float(m)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2, top + 1):
            c_s = c_s * (s - k + 1) / k
            c_m = c_m * (m - k + 1) / k
            pairs = float(np.dot(c_s, mult)) * (1 + 1e-9)
            level = min(c_m * (1 + 1e-9), math.floor(pairs / min_count) if math.isfinite(pairs)
                        else math.inf)
            if level < 1:
                break
            levels.append(math.floor(level) if math.isfinite(level) else math.inf)
    return np.asarray(levels, dtype=np.float64)


def certain_set(
    indptr: np.ndarray, indices: np.ndarray, use: np.ndarray, item_counts: np.ndarray,
    min_count: int,
) -> int:
    """The size of a set of ``use`` items held together by >= ``min_count`` baskets (grown
    greedily, see the module): each of its non-empty subsets is a frequent itemset."""
    counts = np.where(use, item_counts, 0)
    first = int(np.argmax(counts)) if counts.size else 0
    if counts.size == 0 or counts[first] < min_count:
        return 0
    lens = np.diff(indptr)
    # the baskets holding the set so far, as a mask (bools, not int64 indices, over the entries:
    # the baskets may be most of the memory)
    cover = row_sums(indptr, indices == first) > 0
    taken = np.zeros(use.shape[0], dtype=bool)
    taken[first] = True
    size = 1
    while True:
        entries = np.repeat(cover, lens)
        here = np.bincount(indices[entries], minlength=use.shape[0])
        here[~use | taken] = 0
        best = int(np.argmax(here))
        if here[best] < min_count:
            return size
        taken[best] = True
        size += 1
        entries &= indices == best
        cover &= row_sums(indptr, entries) > 0


def subsets(n: int, max_len: int | None) -> float:
    """Non-empty subsets of ``n`` items of at most ``max_len`` items (float, may be inf)."""
    top = n if max_len is None else min(n, max_len)
    if top == n:
        return math.ldexp(1.0, n) - 1 if n < 1024 else math.inf
    return float(sum(math.comb(n, k) for k in range(1, top + 1)))


def _big(x: float) -> str:
    return f"{x:,.0f}" if x < 1e15 else f"{x:.3g}"


def support_text(min_count: int, n_baskets: int, *, count: bool = True) -> str:
    """``0.301 (count 962)``: the fraction rounded up to 3 digits, so it asks for no less."""
    frac = min_count / n_baskets
    scale = 10 ** (2 - math.floor(math.log10(frac)))
    text = f"{math.ceil(frac * scale - 1e-9) / scale:.3g}"
    return f"{text} (count {min_count:,})" if count else text


def _smallest(lo: int, hi: int, fits) -> int | None:
    """The smallest count in [lo, hi] where ``fits(count)`` (assumed monotone), or None."""
    if lo > hi or not fits(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


class Explosion:
    """The bounds of one data set and item filter (``allowed``), at any minimum count."""

    def __init__(
        self, indptr: np.ndarray, indices: np.ndarray, item_counts: np.ndarray,
        allowed: np.ndarray, n_baskets: int, max_len: int | None,
    ) -> None:
        self.indptr, self.indices, self.item_counts = indptr, indices, item_counts
        self.allowed, self.n, self.max_len = allowed, n_baskets, max_len

    def _use(self, min_count: int) -> np.ndarray:
        return self.allowed & (self.item_counts >= min_count)

    def levels(self, min_count: int) -> np.ndarray:
        use = self._use(min_count)
        sizes = frequent_sizes(self.indptr, self.indices, use)
        return upper_levels(sizes, int(use.sum()), min_count, self.max_len)

    def upper(self, min_count: int) -> float:
        """At most this many itemsets are frequent at ``min_count``."""
        return float(self.levels(min_count).sum())

    def lower(self, min_count: int) -> tuple[float, int]:
        """At least this many itemsets are frequent at ``min_count`` (and the size of the set
        of items found together that shows it)."""
        t = certain_set(self.indptr, self.indices, self._use(min_count), self.item_counts,
                        min_count)
        return subsets(t, self.max_len), t

    def advice(self, min_count: int, limit: int) -> str:
        """What to change so that at most ``limit`` itemsets are frequent."""
        actions = []
        need = _smallest(min_count + 1, self.n, lambda c: self.lower(c)[0] <= limit)
        if need is not None:
            text = f"raise min_support to about {support_text(need, self.n)} or more"
            sure = _smallest(need, self.n, lambda c: self.upper(c) <= limit)
            if sure is not None and sure > need:
                text += f" (sure to fit: {support_text(sure, self.n, count=False)})"
            actions.append(text)
        cum = np.cumsum(self.levels(min_count))
        fit_len = int(np.searchsorted(cum, limit, side="right"))
        if fit_len >= 1 and (self.max_len is None or fit_len < self.max_len):
            actions.append(f"set max_len={fit_len} or less")
        actions.append("raise max_itemsets")
        text = ", ".join(actions[:-1]) + f", or {actions[-1]}" if len(actions) > 1 else actions[0]
        return text if need is not None else f"no min_support fits; {text}"


def stop_if_certain(ex: Explosion, min_count: int, max_itemsets: Limit) -> None:
    """Raise ``BudgetExceeded`` before mining when more than ``max_itemsets`` itemsets are
    certain to be frequent at ``min_count`` (the upper bound, cheaper, rules most cases out
    first)."""
    limit = max_itemsets.value
    if limit is None or ex.upper(min_count) <= limit:
        return
    low, t = ex.lower(min_count)
    if low <= limit:
        return
    raise BudgetExceeded(
        f"mining would find at least {_big(low)} frequent itemsets (every subset of {t} items "
        f"found together in at least {min_count:,} of the {ex.n:,} baskets), more than "
        f"{max_itemsets.describe('max_itemsets')}; {ex.advice(min_count, limit)}",
        what="itemsets",
        found=int(min(low, 2.0**62)),
        limit=limit,
        estimated=True,
    )


def rule_candidates(
    indptr: np.ndarray, indices: np.ndarray, is_a: np.ndarray, is_c: np.ndarray, multi: bool,
    max_cons_len: int,
) -> np.ndarray | None:
    """Per itemset Z (CSR rows), how many rules X -> Y rule generation considers: Y a
    non-empty proper subset of Z in the consequent items (one item unless ``multi``, then at
    most ``max_cons_len``), X = Z - Y in the antecedent items. None when not worked out
    (``multi`` with antecedent or consequent constraints)."""
    lens = np.diff(indptr)
    if multi:
        if not (is_a.all() and is_c.all()):
            return None
        out = np.zeros(lens.shape[0], dtype=np.float64)
        for ln in np.unique(lens[lens >= 2]).tolist():
            out[lens == ln] = sum(math.comb(ln, j) for j in range(1, min(max_cons_len, ln - 1) + 1))
        return out
    if is_a.all() and is_c.all():
        return np.where(lens >= 2, lens, 0).astype(np.float64)
    n_c = row_sums(indptr, is_c[indices])
    non_a = (~is_a)[indices]
    n_non_a = row_sums(indptr, non_a)
    non_a &= is_c[indices]
    n_non_a_c = row_sums(indptr, non_a)
    del non_a
    # X = Z - {y} must be all antecedent items: with one item outside them, it must be y
    out = np.where(n_non_a == 0, n_c, np.where(n_non_a == 1, n_non_a_c, 0))
    return np.where(lens >= 2, out, 0).astype(np.float64)
