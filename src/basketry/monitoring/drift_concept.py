"""Concept drift: the model's rules recomputed on a window's orders, and a change detector on
the online hit rate.

* ``rule_confidence``: each rule's confidence ``n_AC / n_A`` on the window's orders (``n_A``
  orders holding the antecedent, ``n_AC`` the antecedent and the consequent), tested one-sided
  for a fall below the model's, with Benjamini-Hochberg across the rules tested. The default
  test is Fisher's exact test against the training counts (``n_AC`` hypergeometric given both
  samples' totals): the reference confidence is itself an estimate, and an upward-biased one
  (rules were kept because it passed ``min_confidence``), so the binomial tail against it
  taken as exact (``test="binomial"``: ``P[X <= n_AC]``, ``X ~ Bin(n_A, reference
  confidence)``) alarms more often than its level on unchanged data, the more so as windows
  grow (measured at FDR 0.05: 6-7% of unchanged windows of 2,000 orders and 74% of 10,000,
  Fisher's 1-2.5% and 3.5%). A rule is tested when the window holds its
  antecedent at least ``min_support_orders`` times *and* it could be rejected at all (its
  smallest possible p-value, at ``n_AC = 0``, is at most ``fdr``): rules that cannot be
  rejected only dilute the correction. The window alarms when any rule is rejected: under no
  change, BH rejects anything with probability at most ``fdr`` (its weak control of the
  family-wise error), less with discrete tests.
* ``broken_rule_mass``: of the window's served rule-based recommendations, the share whose
  explaining rule (the model's best-ranked fired rule for that item in that basket, as
  ``RuleScorer.rank`` explains it) is among the broken rules.
* ``hit_rate_change``: river's ADWIN over the per-query hits of the online replay.

Everything here is numpy, scipy and river: no numba (a serving install has none).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from basketry.model.columns import list_parts, view
from basketry.monitoring.drift_types import Baskets, DriftResult, ServedRecommendations
from basketry.monitoring.support import (
    OrderIndex,
    containing_pairs,
    count_in_index,
    unique_itemsets,
)

TESTS = ("binomial", "fisher")
#: the false discovery rate across a window's rules, which also bounds the share of unchanged
#: windows that alarm (measured on fresh orders of the training distribution, 200 windows of
#: 2,000 orders: 0 alarmed at 0.01, 2-5 at 0.05; a broken pair found in 40 of 40 at either)
DEFAULT_FDR = 0.01
#: broken rules listed in a result's details (the most significant first)
TOP_RULES = 20


def _list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    offsets, values = list_parts(table.column(name).combine_chunks())
    return offsets, values.astype(np.int64)


@dataclass(frozen=True)
class RuleSet:
    """A model's rules as itemsets, prepared once per model: the distinct itemsets of the
    antecedents, consequents and their unions, and each rule's index into them."""

    sets_offsets: np.ndarray
    sets_values: np.ndarray
    antecedent: np.ndarray  # per rule: index of its antecedent in the distinct itemsets
    consequent: np.ndarray
    union: np.ndarray
    a_offsets: np.ndarray  # the rules' antecedents and consequents as item ids (CSR)
    a_values: np.ndarray
    c_offsets: np.ndarray
    c_values: np.ndarray
    count: np.ndarray  # training counts: n_AC, n_A
    antecedent_count: np.ndarray
    confidence: np.ndarray
    lift: np.ndarray

    @property
    def n_rules(self) -> int:
        return int(self.count.shape[0])


_RULE_SETS: weakref.WeakKeyDictionary[Any, RuleSet] = weakref.WeakKeyDictionary()


def rule_set(model: Any) -> RuleSet:
    """The :class:`RuleSet` of a loaded model (cached while the model lives)."""
    found = _RULE_SETS.get(model)
    if found is None:
        found = _RULE_SETS[model] = _build_rule_set(model.artifact.rules, len(model.items))
    return found


def _build_rule_set(rules: pa.Table, n_items: int) -> RuleSet:
    a_off, a_val = _list_column(rules, "antecedent")
    c_off, c_val = _list_column(rules, "consequent")
    n = a_off.shape[0] - 1
    la, lc = np.diff(a_off), np.diff(c_off)
    # the union of each rule's antecedent and consequent: both lists, grouped by rule
    owner = np.concatenate((np.repeat(np.arange(n), la), np.repeat(np.arange(n), lc)))
    u_val = np.concatenate((a_val, c_val))[np.argsort(owner, kind="stable")]
    u_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(la + lc, out=u_off[1:])
    offsets = np.concatenate((a_off, c_off[1:] + a_off[-1], u_off[1:] + a_off[-1] + c_off[-1]))
    values = np.concatenate((a_val, c_val, u_val))
    s_off, s_val, inverse = unique_itemsets(offsets, values, n_items)

    def column(name: str) -> np.ndarray:
        return view(rules.column(name))

    return RuleSet(
        sets_offsets=s_off, sets_values=s_val,
        antecedent=inverse[:n], consequent=inverse[n:2 * n], union=inverse[2 * n:],
        a_offsets=a_off, a_values=a_val, c_offsets=c_off, c_values=c_val,
        count=column("count").astype(np.int64),
        antecedent_count=column("antecedent_count").astype(np.int64),
        confidence=column("confidence").astype(np.float64),
        lift=column("lift").astype(np.float64),
    )


def model_ids(model: Any, baskets: Baskets) -> np.ndarray:
    """The model's id of every item of ``baskets`` (-1 for an item it does not know)."""
    get = model.item_ids.get
    return np.fromiter((get(item, -1) for item in baskets.items), dtype=np.int64,
                       count=len(baskets.items))


@dataclass(frozen=True)
class RuleTests:
    """Every rule of a model tested on one window (arrays indexed by rules-table row)."""

    n_orders: int
    n_a: np.ndarray  # window orders holding the antecedent
    n_ac: np.ndarray  # ... the antecedent and the consequent
    n_c: np.ndarray  # ... the consequent
    tested: np.ndarray  # bool
    p_value: np.ndarray  # NaN where not tested
    q_value: np.ndarray  # BH-adjusted, NaN where not tested
    rejected: np.ndarray  # bool

    @property
    def broken_rows(self) -> np.ndarray:
        return np.flatnonzero(self.rejected)


def rule_tests(model: Any, orders: Baskets, *, fdr: float = DEFAULT_FDR,
               min_support_orders: int = 10, test: str = "fisher") -> RuleTests:
    """Each rule's window counts, one-sided p-value for a fall of confidence and BH q-value."""
    from scipy import stats

    if test not in TESTS:
        raise ValueError(f"unknown rule test {test!r}; known: {', '.join(TESTS)}")
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be in (0, 1), got {fdr!r}")
    rs = rule_set(model)
    index = OrderIndex(orders.indptr, model_ids(model, orders), len(model.items))
    counts = count_in_index(index, rs.sets_offsets, rs.sets_values)
    n_a, n_ac, n_c = counts[rs.antecedent], counts[rs.union], counts[rs.consequent]
    if test == "binomial":
        conf = np.clip(rs.confidence, 0.0, 1.0)

        def tail(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return stats.binom.cdf(x, n_a[rows], conf[rows])
    else:
        # Fisher's exact test, one-sided: the window's n_AC among all n_AC given the
        # antecedent's orders of training and window together (hypergeometric)
        total_a = rs.antecedent_count + n_a
        total_ac = rs.count + n_ac

        def tail(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return stats.hypergeom.cdf(x, total_a[rows], total_ac[rows], n_a[rows])

    candidate = np.flatnonzero(n_a >= max(int(min_support_orders), 1))
    # a rule that cannot be rejected even with no consequent at all is left out (Tarone)
    candidate = candidate[tail(np.zeros(candidate.shape[0]), candidate) <= fdr]
    p = np.full(rs.n_rules, np.nan)
    q = np.full(rs.n_rules, np.nan)
    p[candidate] = np.minimum(tail(n_ac[candidate], candidate), 1.0)
    q[candidate] = benjamini_hochberg(p[candidate])
    tested = np.zeros(rs.n_rules, dtype=bool)
    tested[candidate] = True
    return RuleTests(n_orders=index.n_orders, n_a=n_a, n_ac=n_ac, n_c=n_c, tested=tested,
                     p_value=p, q_value=q, rejected=tested & (q <= fdr))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values): a hypothesis is rejected at FDR ``a`` when q <= a."""
    m = p.shape[0]
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.empty(m)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def _names(model: Any, ids: Iterable[int]) -> tuple[list[str], list[str | None]]:
    ids = list(ids)
    return [model.items[i] for i in ids], [model.labels[i] for i in ids]


def _rule_doc(model: Any, rs: RuleSet, row: int) -> dict[str, Any]:
    """A rule as the details list it: items with labels."""
    a, a_labels = _names(model, rs.a_values[rs.a_offsets[row]: rs.a_offsets[row + 1]].tolist())
    c, c_labels = _names(model, rs.c_values[rs.c_offsets[row]: rs.c_offsets[row + 1]].tolist())
    return {"row": row, "antecedent": a, "antecedent_labels": a_labels,
            "consequent": c, "consequent_labels": c_labels}


def _empty(detector: str, model: Any, start_us: int, end_us: int, statistic: str,
           threshold: float | None, reason: str) -> DriftResult:
    return DriftResult(detector=detector, model_version=model.model_version, start_us=start_us,
                       end_us=end_us, statistic=statistic, value=0.0, threshold=threshold,
                       drifted=False, n=0, details={"reason": reason})


def rule_confidence_drift(model: Any, orders: Baskets, *, start_us: int, end_us: int,
                          fdr: float = DEFAULT_FDR, min_support_orders: int = 10,
                          test: str = "fisher", tests: RuleTests | None = None,
                          top: int = TOP_RULES) -> DriftResult:
    """The rules whose confidence fell significantly in the window (FDR ``fdr`` across the
    rules tested). ``value`` is the share of the tested rules rejected; the window drifts when
    any is (``threshold`` 0). ``tests``: the window's :func:`rule_tests`, when already run."""
    if orders.n == 0:
        return _empty("rule_confidence", model, start_us, end_us, "rejected_share", 0.0,
                      "no orders in the window")
    t = tests if tests is not None else rule_tests(model, orders, fdr=fdr, test=test,
                                                   min_support_orders=min_support_orders)
    rs = rule_set(model)
    n_tested = int(t.tested.sum())
    broken = t.broken_rows
    broken = broken[np.lexsort((broken, t.q_value[broken], t.p_value[broken]))]
    listed = []
    for row in broken[:top].tolist():
        n_a, n_ac, n_c = int(t.n_a[row]), int(t.n_ac[row]), int(t.n_c[row])
        confidence = n_ac / n_a
        lift = confidence / (n_c / t.n_orders) if n_c else None
        listed.append({**_rule_doc(model, rs, row),
                       "reference_confidence": float(rs.confidence[row]),
                       "window_confidence": confidence,
                       "reference_lift": float(rs.lift[row]), "window_lift": lift,
                       "n_a": n_a, "n_ac": n_ac,
                       "p_value": float(t.p_value[row]), "q_value": float(t.q_value[row])})
    details = {"test": test, "fdr": fdr, "min_support_orders": min_support_orders,
               "rules": rs.n_rules, "rules_tested": n_tested,
               "rules_untestable": rs.n_rules - n_tested, "rules_rejected": int(broken.shape[0]),
               "orders": t.n_orders, "broken_rules": listed}
    if rs.n_rules == 0:
        details["reason"] = "the model has no rules"
    elif n_tested == 0:
        details["reason"] = (f"no rule testable: none has its antecedent in {min_support_orders}"
                             " or more of the window's orders, often enough for a fall of its "
                             f"confidence to be found at FDR {fdr}")
    return DriftResult(detector="rule_confidence", model_version=model.model_version,
                       start_us=start_us, end_us=end_us, statistic="rejected_share",
                       value=broken.shape[0] / n_tested if n_tested else 0.0, threshold=0.0,
                       drifted=bool(broken.shape[0]), n=t.n_orders, details=details)


def explaining_rules(model: Any, served: ServedRecommendations) -> np.ndarray:
    """The rules-table row of the rule explaining each served recommendation: the model's
    best-ranked fired rule with that item as its consequent, in that request's basket (what
    ``RuleScorer.rank`` reports as the item's rule); -1 where no rule of the model explains it
    (an unknown item, a rule of another version)."""
    rs = rule_set(model)
    n_items = len(model.items)
    rank_rows = model._rule_row  # rank -> rules row (the scorer's documented total order)
    n_ranked = rank_rows.shape[0]
    basket = np.asarray(served.basket, dtype=np.int64)
    returned = np.fromiter((model.item_ids.get(x, -1) for x in served.returned), dtype=np.int64,
                           count=len(served.returned))
    out = np.full(basket.shape[0], -1, dtype=np.int64)
    known = returned >= 0
    if not known.any():
        return out
    keys = np.unique(basket[known] * n_items + returned[known])
    # the usable rules (single consequent, ranked) whose consequent was served, by antecedent
    cons = rs.c_values[rs.c_offsets[rank_rows]]
    wanted = np.zeros(n_items, dtype=bool)
    wanted[returned[known]] = True
    ranks = np.flatnonzero(wanted[cons])
    ante = rs.antecedent[rank_rows[ranks]]
    by_ante = np.argsort(ante, kind="stable")
    ranks, ante = ranks[by_ante], ante[by_ante]
    sets, first = np.unique(ante, return_index=True)
    group_ptr = np.r_[first, ante.shape[0]].astype(np.int64)
    sub_off, sub_val = _take(rs.sets_offsets, rs.sets_values, sets)
    index = OrderIndex(served.requests.indptr, model_ids(model, served.requests), n_items)
    best = np.full(keys.shape[0], n_ranked, dtype=np.int64)
    for local, request in _fired(index, sub_off, sub_val):
        # every rule of each fired antecedent, with the request it fired in
        size = group_ptr[local + 1] - group_ptr[local]
        rep = np.repeat(np.arange(local.shape[0]), size)
        pos = np.arange(rep.shape[0]) - np.repeat(np.cumsum(size) - size, size)
        rank = ranks[group_ptr[local][rep] + pos]
        key = request[rep] * n_items + cons[rank]
        at = np.searchsorted(keys, key)
        at[at == keys.shape[0]] = 0
        hit = keys[at] == key
        np.minimum.at(best, at[hit], rank[hit])
    at = np.searchsorted(keys, basket * n_items + returned)
    at[~known] = 0
    found = known & (best[at] < n_ranked)
    out[found] = rank_rows[best[at[found]]]
    return out


def _take(offsets: np.ndarray, values: np.ndarray, sets: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray]:
    """The CSR of the itemsets ``sets`` of a CSR list."""
    lengths = offsets[sets + 1] - offsets[sets]
    out = np.zeros(sets.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    pos = np.arange(out[-1]) - np.repeat(out[:-1], lengths) + np.repeat(offsets[sets], lengths)
    return out, values[pos]


def _fired(index: OrderIndex, offsets: np.ndarray, values: np.ndarray,
           ) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(itemset, basket) pairs of baskets holding the itemset; an empty itemset is in all."""
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if empty.shape[0]:
        every = np.arange(index.n_orders, dtype=np.int64)
        yield np.repeat(empty, index.n_orders), np.tile(every, empty.shape[0])
    yield from containing_pairs(index, offsets, values)


def broken_rule_mass(model: Any, served: ServedRecommendations,
                     broken_rule_rows: np.ndarray, *, start_us: int, end_us: int,
                     max_share: float = 0.05, top: int = TOP_RULES) -> DriftResult:
    """The share of the window's served rule-based recommendations whose explaining rule is
    among ``broken_rule_rows`` (rules-table rows, e.g. ``RuleTests.broken_rows``); the window
    drifts when it is above ``max_share``."""
    n_served = len(served.returned)
    if n_served == 0:
        return _empty("broken_rule_mass", model, start_us, end_us, "share", max_share,
                      "no rule-based recommendation served in the window")
    rows = explaining_rules(model, served)
    explained = rows >= 0
    broken = np.zeros(rows.shape[0], dtype=bool)
    broken[explained] = np.isin(rows[explained], np.asarray(broken_rule_rows, dtype=np.int64))
    n_explained, n_broken = int(explained.sum()), int(broken.sum())
    share = n_broken / n_explained if n_explained else 0.0
    rs = rule_set(model)
    rule, times = np.unique(rows[broken], return_counts=True)
    ordering = np.lexsort((rule, -times))[:top]
    details: dict[str, Any] = {
        "served": n_served, "explained": n_explained, "unexplained": n_served - n_explained,
        "served_by_broken_rules": n_broken, "broken_rules_in_window": len(broken_rule_rows),
        "broken_rules": [{**_rule_doc(model, rs, int(rule[i])), "served": int(times[i])}
                         for i in ordering.tolist()]}
    if n_explained == 0:
        details["reason"] = "no served recommendation is explained by a rule of this model"
    return DriftResult(detector="broken_rule_mass", model_version=model.model_version,
                       start_us=start_us, end_us=end_us, statistic="share", value=share,
                       threshold=max_share, drifted=share > max_share, n=n_explained,
                       details=details)


def concept_drift(model: Any, orders: Baskets, served: ServedRecommendations, *,
                  start_us: int, end_us: int, fdr: float = DEFAULT_FDR,
                  min_support_orders: int = 10,
                  test: str = "fisher", max_share: float = 0.05) -> list[DriftResult]:
    """The window's ``rule_confidence`` and ``broken_rule_mass`` results (the hit-rate change
    detector runs over a series of windows: :func:`hit_rate_changes`)."""
    if orders.n == 0:
        reason = "no orders in the window"
        return [_empty("rule_confidence", model, start_us, end_us, "rejected_share", 0.0, reason),
                _empty("broken_rule_mass", model, start_us, end_us, "share", max_share, reason)]
    tests = rule_tests(model, orders, fdr=fdr, min_support_orders=min_support_orders, test=test)
    return [rule_confidence_drift(model, orders, start_us=start_us, end_us=end_us, fdr=fdr,
                                  min_support_orders=min_support_orders, test=test, tests=tests),
            broken_rule_mass(model, served, tests.broken_rows, start_us=start_us,
                             end_us=end_us, max_share=max_share)]


@dataclass(frozen=True)
class HitRateWindow:
    """One window of the online replay: its hits (e.g. ``hits@10``) out of its queries."""

    start_us: int
    end_us: int
    hits: int
    queries: int


#: the most queries one window weighs in the hit-rate change detector
MAX_QUERIES = 2_000


def _spread(hits: int, queries: int) -> np.ndarray:
    """``hits`` ones among ``queries`` bits, evenly spread (the window's order is not known,
    and bunching them would look like a change inside the window)."""
    i = np.arange(queries + 1, dtype=np.int64)
    return np.diff(i * hits // max(queries, 1)).astype(np.int64)


def hit_rate_changes(series: Sequence[HitRateWindow | tuple[int, int, int, int]], *,
                     model_version: str, delta: float = 0.002, min_drop: float = 0.01,
                     max_queries: int = MAX_QUERIES) -> list[DriftResult]:
    """A sequential change detector over the online hit rate: river's ADWIN fed each query's
    hit (1) or miss (0), window after window (a window's hits evenly spread among its
    queries); a window drifts when ADWIN detects a decrease in it (the part it keeps has a
    lower mean than the part it drops) and the window's hit rate is at least ``min_drop``
    below ADWIN's estimate before the window (only decreases alarm; a tiny but significant
    drop over many queries does not).
    ``delta``: ADWIN's confidence (smaller: fewer false alarms, later detection).
    ``max_queries``: a window weighs at most this many queries (its hit rate kept): hit rates
    vary from window to window more than binomial sampling says (weekdays, promotions), and
    ADWIN, which takes queries as independent, would alarm on that normal variation in windows
    of many queries (measured: 10% of unchanged windows of 20,000 queries whose true rate
    varies by one point; none with the cap)."""
    from river.drift import ADWIN

    adwin = ADWIN(delta=delta)
    out: list[DriftResult] = []
    for window in series:
        w = window if isinstance(window, HitRateWindow) else HitRateWindow(*window)
        before = float(adwin.estimation) if adwin.width else None
        history = int(adwin.width)
        if w.queries <= 0:
            out.append(DriftResult(
                detector="hit_rate_change", model_version=model_version, start_us=w.start_us,
                end_us=w.end_us, statistic="hit_rate", value=0.0, threshold=None,
                drifted=False, n=0, details={"reason": "no queries in the window"}))
            continue
        decreases = increases = 0
        weight = min(w.queries, max(int(max_queries), 1))
        for bit in _spread(round(w.hits * weight / w.queries), weight).tolist():
            width, total = adwin.width, adwin.estimation * adwin.width
            adwin.update(bit)
            if adwin.drift_detected:
                # ADWIN dropped its older part: the change's direction is the kept part's mean
                # against the dropped part's
                dropped = (total + bit - adwin.estimation * adwin.width) / \
                    max(width + 1 - adwin.width, 1)
                if adwin.estimation < dropped:
                    decreases += 1
                else:
                    increases += 1
        rate = w.hits / w.queries
        details: dict[str, Any] = {
            "detector": "ADWIN", "delta": delta, "min_drop": min_drop, "weight": weight,
            "reference_hit_rate": before, "window_hit_rate": rate, "hits": w.hits,
            "history_queries": history, "decreases_detected": decreases,
            "increases_detected": increases}
        # a decrease detected, and large enough against the history to matter
        dropped_enough = before is not None and rate <= before - min_drop
        out.append(DriftResult(
            detector="hit_rate_change", model_version=model_version, start_us=w.start_us,
            end_us=w.end_us, statistic="hit_rate", value=rate,
            threshold=None if before is None else before - min_drop,
            drifted=bool(decreases) and dropped_enough, n=w.queries,
            details=details))
    return out
