"""Association rules and their interest measures, vectorised over arrays."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from basketry.mining._compiled import kernels
from basketry.mining._explosion import rule_candidates
from basketry.mining._params import (
    Limit,
    MemoryBudget,
    check_max,
    check_range,
    exact_fraction,
    resolve_memory_budget,
)
from basketry.mining.errors import BudgetExceeded, MiningError
from basketry.mining.itemsets import FrequentItemsets

MEASURES = (
    "support",
    "antecedent_support",
    "consequent_support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "zhang",
    "jaccard",
    "certainty",
    "kulczynski",
    "p_value",
)
COUNTS = ("count", "antecedent_count", "consequent_count")


@dataclass(frozen=True)
class Rules:
    """Association rules ``antecedent -> consequent`` as arrays.

    Antecedents and consequents are CSR rows of original item ids (sorted within a row).
    Rules are sorted by antecedent ids, then consequent ids (lexicographically).
    ``measures`` maps each name of ``MEASURES`` to a float64 array (a read-only mapping that
    computes the measures on first access: the p-value on its own, the others together).
    """

    antecedent_indptr: np.ndarray
    antecedent_indices: np.ndarray
    consequent_indptr: np.ndarray
    consequent_indices: np.ndarray
    count: np.ndarray
    antecedent_count: np.ndarray
    consequent_count: np.ndarray
    measures: Mapping[str, np.ndarray]
    n_baskets: int
    items: np.ndarray

    def __len__(self) -> int:
        return int(self.count.shape[0])

    def antecedent(self, r: int) -> tuple[int, ...]:
        p = self.antecedent_indptr
        return tuple(int(x) for x in self.antecedent_indices[p[r] : p[r + 1]])

    def consequent(self, r: int) -> tuple[int, ...]:
        p = self.consequent_indptr
        return tuple(int(x) for x in self.consequent_indices[p[r] : p[r + 1]])


def _ge_exact(num: np.ndarray, den: np.ndarray, value: float, threshold: Fraction) -> np.ndarray:
    """Exactly ``num / den >= threshold`` per element (num, den: integer arrays of Python-int
    safe values); the float ratio decides except within 1e-9 of the threshold, where Python
    integers do."""
    ratio = num.astype(np.float64) / den.astype(np.float64)
    out = ratio >= value
    near = np.flatnonzero(np.abs(ratio - value) <= 1e-9 * max(abs(value), 1e-300))
    if near.size:
        a, b = threshold.numerator, threshold.denominator
        for i in near.tolist():
            out[i] = int(num[i]) * b >= a * int(den[i])
    return out


def _int_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise product as int64 when safe, else as Python ints (object array)."""
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if float(np.max(np.abs(a))) * float(np.max(np.abs(b))) < 2.0**62:
        return a.astype(np.int64) * b.astype(np.int64)
    return a.astype(object) * b.astype(object)


def compute_measures(
    n_xy: np.ndarray, n_x: np.ndarray, n_y: np.ndarray, n_baskets: int
) -> dict[str, np.ndarray]:
    """Every interest measure of rules with counts n_xy, n_x, n_y among ``n_baskets``."""
    measures = LazyMeasures(n_xy, n_x, n_y, n_baskets)
    return {name: measures[name] for name in MEASURES}


class LazyMeasures(Mapping):
    """The measures of rules with counts n_xy, n_x, n_y, computed when first looked up.

    Rule generation needs only counts; the float measures (11 float64 arrays, computed together)
    and the Fisher p-value (the costliest) are computed on first access and kept."""

    def __init__(
        self, n_xy: np.ndarray, n_x: np.ndarray, n_y: np.ndarray, n_baskets: int
    ) -> None:
        if n_baskets >= 2**31:  # the exact int64 numerator could overflow
            raise MiningError("more than 2**31 baskets are not supported")
        self._counts = (
            np.ascontiguousarray(n_xy, dtype=np.int64),
            np.ascontiguousarray(n_x, dtype=np.int64),
            np.ascontiguousarray(n_y, dtype=np.int64),
        )
        self._n = int(n_baskets)
        self._values: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        value = self._values.get(name)
        if value is not None:
            return value
        if name not in MEASURES:
            raise KeyError(name)
        if name == "p_value":
            self._values[name] = kernels.fisher_upper(*self._counts, self._n)
        else:
            table = kernels.rule_measures(*self._counts, self._n)
            for k, key in enumerate(MEASURES[:-1]):
                self._values[key] = table[k]
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(MEASURES)

    def __len__(self) -> int:
        return len(MEASURES)

    def __repr__(self) -> str:
        done = ", ".join(k for k in MEASURES if k in self._values) or "none"
        return f"LazyMeasures({self._counts[0].shape[0]} rules; computed: {done})"


def association_rules(
    itemsets: FrequentItemsets,
    *,
    min_confidence: float | None = None,
    min_lift: float | None = None,
    max_p_value: float | None = None,
    multi_consequent: bool | None = None,
    max_consequent_len: int | None = None,
    max_rules: int | None = None,
    memory_budget: MemoryBudget | int | str | None = None,
) -> Rules:
    """Rules from frequent itemsets.

    Single-item consequents unless ``multi_consequent`` (default: as the itemsets were mined)
    or ``max_consequent_len`` > 1. Antecedent/consequent constraints are those the itemsets were
    mined with. ``min_confidence`` in [0, 1] and ``min_lift`` >= 0 are compared exactly on
    integer counts (``Fraction(repr(x))``); ``max_p_value`` in (0, 1] filters on the one-sided
    Fisher exact test. Raises ``BudgetExceeded`` once more than ``max_rules`` rules pass the
    confidence and lift thresholds; without ``max_rules``, the limit is what ``memory_budget``
    holds after the itemsets (see ``frequent_itemsets``).
    """
    check_range("min_confidence", min_confidence, 0.0, 1.0)
    check_range("min_lift", min_lift, 0.0, None)
    check_range("max_p_value", max_p_value, 0.0, 1.0, low_open=True)
    max_consequent_len = check_max("max_consequent_len", max_consequent_len)
    used = sum(a.nbytes for a in (itemsets.indptr, itemsets.indices, itemsets.counts))
    limit = resolve_memory_budget(memory_budget).max_rules(check_max("max_rules", max_rules), used)
    max_rules = limit.value
    if multi_consequent is None:
        multi_consequent = itemsets.multi_consequent or (max_consequent_len or 1) > 1
    multi = bool(multi_consequent)
    if multi and not itemsets.multi_consequent and itemsets.antecedent_mask is not None:
        raise MiningError(
            "multi_consequent: these itemsets were mined for single-item consequents with "
            "antecedents constrained; mine them with multi_consequent=True"
        )
    if max_consequent_len is None:
        max_consequent_len = 1 << 30 if multi else 1
    n_items = itemsets.items.shape[0]
    n = itemsets.n_baskets
    is_a = (
        np.ones(n_items, dtype=np.bool_)
        if itemsets.antecedent_mask is None
        else itemsets.antecedent_mask.astype(np.bool_)
    )
    is_c = (
        np.ones(n_items, dtype=np.bool_)
        if itemsets.consequent_mask is None
        else itemsets.consequent_mask.astype(np.bool_)
    )
    if max_rules is not None:
        _stop_if_certain(itemsets, is_a, is_c, multi, max_consequent_len, min_confidence,
                         min_lift, limit)
    conf_floor = 0.0 if not min_confidence else float(min_confidence) * (1 - 1e-9)
    lift_floor = 0.0 if not min_lift else float(min_lift) * (1 - 1e-9)
    z, x, y, stopped, broken = kernels.generate_rules(
        itemsets.indptr,
        itemsets.indices,
        itemsets.counts,
        is_a,
        is_c,
        n,
        multi,
        max_consequent_len,
        conf_floor,
        lift_floor,
        -1 if max_rules is None else max_rules,
    )
    if broken:
        raise MiningError(
            "these itemsets lack subsets that rules need (mined with other constraints, or "
            "itemsets longer than 62 items with multi_consequent)"
        )
    counts = itemsets.counts
    n_xy, n_x, n_y = counts[z], counts[x], counts[y]
    keep = np.ones(z.shape[0], dtype=bool)
    if min_confidence:
        keep &= _ge_exact(n_xy, n_x, float(min_confidence), exact_fraction(min_confidence))
    if min_lift:
        keep &= _ge_exact(
            _int_products(n_xy, np.full_like(n_xy, n)),
            _int_products(n_x, n_y),
            float(min_lift),
            exact_fraction(min_lift),
        )
    if stopped:
        found = int(keep.sum())
        conf = n_xy[keep] / n_x[keep]
        srt = np.sort(conf)[::-1]
        suggest = float(srt[min(max_rules, srt.shape[0] - 1)]) if srt.size else 1.0
        raise BudgetExceeded(
            f"rule generation stopped after finding {found:,} rules, more than "
            f"{limit.describe('max_rules')}; raise min_confidence to about {suggest:.3g} or more, "
            "raise min_support or min_lift, or set max_len",
            what="rules",
            found=found,
            limit=max_rules,
        )
    if not keep.all():
        sel = np.flatnonzero(keep)
        x, y, n_xy, n_x, n_y = x[sel], y[sel], n_xy[sel], n_x[sel], n_y[sel]
    # deterministic order: antecedent ids, then consequent ids (lexicographic)
    n_sets = len(itemsets)
    rank = np.empty(n_sets, dtype=np.int64)
    rank[kernels.radix_order(itemsets.indptr, itemsets.indices, n_items, False)] = np.arange(n_sets)
    order = kernels.order_by_two_keys(rank[x], rank[y], max(n_sets, 1))
    x, y, n_xy, n_x, n_y = x[order], y[order], n_xy[order], n_x[order], n_y[order]
    if max_p_value is not None:
        ok = kernels.fisher_upper(n_xy, n_x, n_y, n) <= max_p_value
        x, y, n_xy, n_x, n_y = x[ok], y[ok], n_xy[ok], n_x[ok], n_y[ok]
    measures = LazyMeasures(n_xy, n_x, n_y, n)
    a_ptr, a_idx = kernels.gather_rows(itemsets.indptr, itemsets.indices, x)
    c_ptr, c_idx = kernels.gather_rows(itemsets.indptr, itemsets.indices, y)
    return Rules(
        antecedent_indptr=a_ptr,
        antecedent_indices=a_idx,
        consequent_indptr=c_ptr,
        consequent_indices=c_idx,
        count=n_xy,
        antecedent_count=n_x,
        consequent_count=n_y,
        measures=measures,
        n_baskets=n,
        items=itemsets.items,
    )


def _stop_if_certain(
    itemsets: FrequentItemsets, is_a: np.ndarray, is_c: np.ndarray, multi: bool,
    max_consequent_len: int, min_confidence: float | None, min_lift: float | None, limit: Limit,
) -> None:
    """Raise ``BudgetExceeded`` before generating rules when more than the limit are certain:
    a rule's confidence and lift are both >= min_count / n_baskets (its itemset is in at least
    min_count baskets, its antecedent and consequent in at most n_baskets), so with thresholds
    no higher than that, every rule considered is kept."""
    n = itemsets.n_baskets
    floor = Fraction(itemsets.min_count, n) if n else Fraction(0)
    if any(t and exact_fraction(t) > floor for t in (min_confidence, min_lift)):
        return
    per_set = rule_candidates(itemsets.indptr, itemsets.indices, is_a, is_c, multi,
                              max_consequent_len)
    if per_set is None or limit.value is None or per_set.sum() <= limit.value:
        return
    total = float(per_set.sum())
    by_len = np.cumsum(np.bincount(itemsets.lengths, weights=per_set))
    fit_len = int(np.searchsorted(by_len, limit.value, side="right")) - 1
    len_hint = f", or set max_len={fit_len} or less" if fit_len >= 2 else ""
    raise BudgetExceeded(
        f"rule generation would find {total:,.0f} rules from {len(itemsets):,} itemsets (each "
        f"has confidence and lift >= min_count / n_baskets = {float(floor):.3g}, so all pass), "
        f"more than {limit.describe('max_rules')}; raise min_confidence above "
        f"{float(floor):.3g}, raise min_support{len_hint}",
        what="rules",
        found=int(min(total, 2.0**62)),
        limit=limit.value,
        estimated=True,
    )
