"""Sequential rules from customer histories: the items of an order -> an item of a later order
of the same customer within a horizon, and the items customers buy again.

The measures are defined on customers (``basketry.model.sequential`` states them): a customer
counts once for a rule however many of their orders show it, so a wholesaler ordering every
week weighs as much as anyone else. Histories are the baskets of each customer ordered by time;
baskets without a customer are left out. The work is done per customer in a compiled kernel
(each followed order's items times the distinct items of the orders within its horizon,
deduplicated per customer), then counted with sorts: never a dense matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from basketry.data import Baskets
from basketry.mining.errors import MiningError
from basketry.model.columns import list_array, primitive_array
from basketry.model.format import REPEAT_SCHEMA, SEQUENTIAL_RULES_SCHEMA
from basketry.model.sequential import MAX_ANTECEDENT, RULE_WEIGHT, SequentialPart

_DAY_NS = 86_400 * 10**9

#: Defaults: a 30-day horizon, rules seen for at least 0.2% of the customers (and 2), with a
#: confidence of at least 2%, the 50 most confident rules kept per antecedent.
HORIZON_DAYS = 30.0
MIN_SUPPORT = 0.002
MIN_CONFIDENCE = 0.02
MAX_PER_ANTECEDENT = 50


@dataclass(frozen=True)
class Histories:
    """Customer histories: the baskets with a customer, sorted by customer then time.
    Order ``o`` is basket ``basket[o]``; customer ``c`` holds orders ``ptr[c]:ptr[c + 1]``."""

    ptr: np.ndarray
    basket: np.ndarray
    time: np.ndarray  # int64 nanoseconds
    customers: np.ndarray  # the customer id of each history


def histories(baskets: Baskets) -> Histories:
    """The customer histories of ``baskets``; ``MiningError`` (one line) naming the missing
    column when the baskets have no customers or no timestamps."""
    where = baskets.source or "the data"
    if baskets.customers is None:
        raise MiningError(f"{where} has no customer column; sequential rules need one "
                          "(a customer id per transaction)")
    if baskets.timestamps is None:
        raise MiningError(f"{where} has no timestamp column; sequential rules need one "
                          "(a date per transaction)")
    stamps = baskets.timestamps.astype("datetime64[ns]")
    customers = np.asarray(baskets.customers, dtype=object)
    known = np.array([c is not None and c == c and str(c) != "" for c in customers], dtype=bool)
    known &= ~np.isnat(stamps)
    index = np.flatnonzero(known)
    codes, ids = np.unique(customers[index].astype(str), return_inverse=True)
    time = stamps[index].astype(np.int64)
    order = np.lexsort((index, time, ids))
    ids = ids[order]
    ptr = np.zeros(codes.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(ids, minlength=codes.shape[0]), out=ptr[1:])
    return Histories(ptr=ptr, basket=index[order].astype(np.int64), time=time[order],
                     customers=codes)


@numba.njit(cache=True)
def _windows(ptr, time, horizon):  # pragma: no cover - jit
    """For each order: the first and one-past-last later order of its customer within the
    horizon (strictly later, at most ``horizon`` ns after it); empty when not followed."""
    n = time.shape[0]
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    for c in range(ptr.shape[0] - 1):
        for i in range(ptr[c], ptr[c + 1]):
            j = i + 1
            while j < ptr[c + 1] and time[j] <= time[i]:
                j += 1
            lo[i] = j
            e = j
            while e < ptr[c + 1] and time[e] <= time[i] + horizon:
                e += 1
            hi[i] = e
    return lo, hi


@numba.njit(cache=True)
def _distinct_of(keys, owner, start, end, c):  # pragma: no cover - jit
    """``keys[start:end]`` (one customer's) sorted and made distinct in place, each owned by
    customer ``c``; the new end."""
    if end <= start:
        return end
    seg = np.sort(keys[start:end])
    v = start
    for t in range(seg.shape[0]):
        if t == 0 or seg[t] != seg[t - 1]:
            keys[v] = seg[t]
            owner[v] = c
            v += 1
    return v


@numba.njit(cache=True)
def _keys(ptr, lo, hi, u_ptr, u_val, b_ptr, b_val, n_items):  # pragma: no cover - jit
    """Per customer, the distinct ``unit * n_items + y``: a unit (an item, or a pair's index)
    of a followed order and an item ``y`` of an order within its horizon. Returns the keys,
    sorted within each customer, and each key's customer."""
    mark = np.full(n_items, -1, dtype=np.int64)
    distinct = np.empty(n_items, dtype=np.int64)
    bound = 0
    for i in range(lo.shape[0]):
        m = 0
        for j in range(lo[i], hi[i]):
            for p in range(b_ptr[j], b_ptr[j + 1]):
                y = b_val[p]
                if mark[y] != i:
                    mark[y] = i
                    m += 1
        bound += (u_ptr[i + 1] - u_ptr[i]) * m
    keys = np.empty(bound, dtype=np.int64)
    owner = np.empty(bound, dtype=np.int64)
    mark[:] = -1
    w = 0
    for c in range(ptr.shape[0] - 1):
        start = w
        for i in range(ptr[c], ptr[c + 1]):
            m = 0
            for j in range(lo[i], hi[i]):
                for p in range(b_ptr[j], b_ptr[j + 1]):
                    y = b_val[p]
                    if mark[y] != i:
                        mark[y] = i
                        distinct[m] = y
                        m += 1
            for q in range(u_ptr[i], u_ptr[i + 1]):
                base = u_val[q] * n_items
                for t in range(m):
                    keys[w] = base + distinct[t]
                    w += 1
        w = _distinct_of(keys, owner, start, w, c)
    return keys[:w], owner[:w]


@numba.njit(cache=True)
def _order_pairs(ptr, lo, hi, b_ptr, b_val, n_items):  # pragma: no cover - jit
    """Per customer, the distinct item pairs ``a * n_items + b`` (a < b) of followed orders."""
    bound = 0
    for i in range(lo.shape[0]):
        if hi[i] > lo[i]:
            s = b_ptr[i + 1] - b_ptr[i]
            bound += s * (s - 1) // 2
    keys = np.empty(bound, dtype=np.int64)
    owner = np.empty(bound, dtype=np.int64)
    w = 0
    for c in range(ptr.shape[0] - 1):
        start = w
        for i in range(ptr[c], ptr[c + 1]):
            if hi[i] <= lo[i]:
                continue
            for p in range(b_ptr[i], b_ptr[i + 1]):
                for q in range(p + 1, b_ptr[i + 1]):
                    keys[w] = b_val[p] * n_items + b_val[q]
                    w += 1
        w = _distinct_of(keys, owner, start, w, c)
    return keys[:w], owner[:w]


@numba.njit(cache=True)
def _pair_units(b_ptr, b_val, lo, hi, candidates, n_items):  # pragma: no cover - jit
    """For each order, the indices of the candidate pairs (sorted keys ``a * n + b``) it holds
    (none for an order that is not followed)."""
    n = b_ptr.shape[0] - 1
    counts = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        if hi[i] <= lo[i]:
            continue
        for p in range(b_ptr[i], b_ptr[i + 1]):
            for q in range(p + 1, b_ptr[i + 1]):
                key = b_val[p] * n_items + b_val[q]
                at = np.searchsorted(candidates, key)
                if at < candidates.shape[0] and candidates[at] == key:
                    counts[i + 1] += 1
    u_ptr = np.cumsum(counts)
    u_val = np.empty(u_ptr[n], dtype=np.int64)
    w = 0
    for i in range(n):
        if hi[i] <= lo[i]:
            continue
        for p in range(b_ptr[i], b_ptr[i + 1]):
            for q in range(p + 1, b_ptr[i + 1]):
                key = b_val[p] * n_items + b_val[q]
                at = np.searchsorted(candidates, key)
                if at < candidates.shape[0] and candidates[at] == key:
                    u_val[w] = at
                    w += 1
    return u_ptr, u_val


@numba.njit(cache=True)
def _count_pairs(keys, n_items):  # pragma: no cover - jit
    """The distinct keys ``x * n_items + y`` (ascending) and how many times each occurs, in
    linear time: the keys bucketed by ``x`` (a counting sort), each bucket counted on a dense
    array of ``n_items`` counters that is cleared as it is read."""
    n = keys.shape[0]
    n_units = 0
    for i in range(n):
        u = keys[i] // n_items
        if u + 1 > n_units:
            n_units = u + 1
    start = np.zeros(n_units + 1, dtype=np.int64)
    for i in range(n):
        start[keys[i] // n_items + 1] += 1
    for u in range(n_units):
        start[u + 1] += start[u]
    fill = start[:-1].copy()
    ys = np.empty(n, dtype=np.int64)
    for i in range(n):
        u = keys[i] // n_items
        ys[fill[u]] = keys[i] % n_items
        fill[u] += 1
    count = np.zeros(n_items, dtype=np.int64)
    touched = np.empty(n_items, dtype=np.int64)
    out_key = np.empty(n, dtype=np.int64)
    out_count = np.empty(n, dtype=np.int64)
    w = 0
    for u in range(n_units):
        m = 0
        for p in range(start[u], start[u + 1]):
            y = ys[p]
            if count[y] == 0:
                touched[m] = y
                m += 1
            count[y] += 1
        seen = np.sort(touched[:m])
        for t in range(m):
            out_key[w] = u * n_items + seen[t]
            out_count[w] = count[seen[t]]
            count[seen[t]] = 0
            w += 1
    return out_key[:w], out_count[:w]


def _runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how many times each occurs."""
    if not sorted_keys.size:
        return sorted_keys, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    return sorted_keys[starts], np.diff(np.append(starts, sorted_keys.shape[0]))


def _customer_counts(values: np.ndarray, owner: np.ndarray, size: int) -> np.ndarray:
    """How many distinct customers each value (0..size-1) occurs for."""
    if not values.size:
        return np.zeros(size, dtype=np.int64)
    # (value, customer) pairs counted like the rules' keys, then one per customer
    distinct, _ = _count_pairs(values * np.int64(owner.max() + 1) + owner, owner.max() + 1)
    return np.bincount(distinct // (owner.max() + 1), minlength=size).astype(np.int64)


def _check(horizon_days: float, min_support: float, min_confidence: float,
           max_antecedent: int, max_per_antecedent: int) -> None:
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int | float) \
            or not math.isfinite(horizon_days) or horizon_days <= 0:
        raise MiningError(f"horizon_days must be a number of days > 0, got {horizon_days!r}")
    if not 0 <= min_support <= 1:
        raise MiningError(f"min_support must be within [0, 1], got {min_support!r}")
    if not 0 <= min_confidence <= 1:
        raise MiningError(f"min_confidence must be within [0, 1], got {min_confidence!r}")
    if max_antecedent not in range(1, MAX_ANTECEDENT + 1):
        raise MiningError(f"max_antecedent must be 1 or {MAX_ANTECEDENT}, got {max_antecedent!r}")
    if max_per_antecedent < 1:
        raise MiningError(f"max_per_antecedent must be >= 1, got {max_per_antecedent!r}")


def mine_sequential(
    baskets: Baskets,
    *,
    horizon_days: float = HORIZON_DAYS,
    min_support: float = MIN_SUPPORT,
    min_confidence: float = MIN_CONFIDENCE,
    max_antecedent: int = 1,
    max_per_antecedent: int = MAX_PER_ANTECEDENT,
) -> SequentialPart:
    """Sequential rules and repeat items of ``baskets`` (item ids are the baskets' own): rules
    seen for at least ``max(2, ceil(min_support * n_customers))`` customers with a confidence
    of at least ``min_confidence``, the ``max_per_antecedent`` most confident per antecedent
    (ties: the smaller consequent id); every item bought again by 2 customers or more.
    ``MiningError`` for data without customers or timestamps, a horizon <= 0 or a bad
    parameter; one with no customer ordering twice within the horizon too."""
    _check(horizon_days, min_support, min_confidence, max_antecedent, max_per_antecedent)
    h = histories(baskets)
    n_items = baskets.n_items
    b_ptr = np.zeros(h.basket.shape[0] + 1, dtype=np.int64)
    np.cumsum(baskets.indptr[h.basket + 1] - baskets.indptr[h.basket], out=b_ptr[1:])
    b_val = baskets.subset(h.basket).indices.astype(np.int64)
    lo, hi = _windows(h.ptr, h.time, np.int64(round(horizon_days * _DAY_NS)))
    keys, owner = _keys(h.ptr, lo, hi, b_ptr, b_val, b_ptr, b_val, n_items)
    n_customers = int(np.unique(owner).shape[0])
    if n_customers == 0:
        raise MiningError(f"{baskets.source or 'the data'}: no customer orders again within "
                          f"{horizon_days:g} days; there is nothing to learn sequential rules "
                          "from (a longer horizon may help)")
    x, y = keys // n_items, keys % n_items
    n_x = _customer_counts(x, owner, n_items)
    n_y = _customer_counts(y, owner, n_items)
    pair_keys, n_xy = _count_pairs(keys, n_items)
    min_count = max(2, math.ceil(min_support * n_customers - 1e-9))
    px, py = pair_keys // n_items, pair_keys % n_items

    repeat = (px == py) & (n_xy >= 2)
    repeat_table = _repeat_table(px[repeat], n_xy[repeat], n_x[px[repeat]], n_y[px[repeat]],
                                 n_customers)
    keep = (px != py) & (n_xy >= min_count)
    a_off = np.arange(int(keep.sum()) + 1, dtype=np.int64)
    parts = [(a_off, px[keep], py[keep], n_xy[keep], n_x[px[keep]])]
    if max_antecedent == 2:
        parts.append(_pair_rules(h, lo, hi, b_ptr, b_val, n_items, min_count))
    rules = _rules_table(parts, n_y, n_customers, min_confidence, max_per_antecedent)
    params = {"horizon_days": float(horizon_days), "min_support": float(min_support),
              "min_count": int(min_count), "min_confidence": float(min_confidence),
              "max_antecedent": int(max_antecedent),
              "max_per_antecedent": int(max_per_antecedent), "rule_weight": RULE_WEIGHT,
              "basis": "customers"}
    return SequentialPart(rules=rules, repeat=repeat_table, n_customers=n_customers,
                          parameters=params)


def _pair_rules(h: Histories, lo: np.ndarray, hi: np.ndarray, b_ptr: np.ndarray,
                b_val: np.ndarray, n_items: int, min_count: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rules ``{a, b} -> y``: pairs of a followed order seen for ``min_count`` customers or
    more (their antecedent count), then the pairs' consequents counted like the items'."""
    pair_keys, _ = _order_pairs(h.ptr, lo, hi, b_ptr, b_val, n_items)
    candidates, counts = _runs(np.sort(pair_keys))
    candidates, counts = candidates[counts >= min_count], counts[counts >= min_count]
    empty = np.zeros(0, dtype=np.int64)
    if not candidates.size:
        return np.zeros(1, dtype=np.int64), empty, empty, empty, empty
    u_ptr, u_val = _pair_units(b_ptr, b_val, lo, hi, candidates, n_items)
    keys, _ = _keys(h.ptr, lo, hi, u_ptr, u_val, b_ptr, b_val, n_items)
    found, n_xy = _count_pairs(keys, n_items)
    unit, y = found // n_items, found % n_items
    a, b = candidates[unit] // n_items, candidates[unit] % n_items
    keep = (n_xy >= min_count) & (y != a) & (y != b)
    values = np.stack((a[keep], b[keep]), axis=1).ravel()
    offsets = np.arange(0, values.shape[0] + 1, 2, dtype=np.int64)
    return offsets, values, y[keep], n_xy[keep], counts[unit[keep]]


def _rules_table(parts: list[tuple[np.ndarray, ...]], n_y: np.ndarray, n_customers: int,
                 min_confidence: float, max_per_antecedent: int) -> object:
    import pyarrow as pa

    offsets, values, consequent, count, ante_count = _concat(parts)
    confidence = count / np.maximum(ante_count, 1)
    sizes = np.diff(offsets)
    first = values[offsets[:-1]]
    second = np.where(sizes > 1, values[np.minimum(offsets[:-1] + 1, values.shape[0] - 1)]
                      if values.size else 0, -1)
    # the most confident rules per antecedent, then sorted for the file: antecedent, then
    # confidence desc, then consequent
    order = np.lexsort((consequent, -confidence, second, first, sizes))
    order = order[confidence[order] >= min_confidence]
    key = np.stack((sizes[order], first[order], second[order]), axis=1)
    new = np.ones(order.shape[0], dtype=bool)
    new[1:] = (key[1:] != key[:-1]).any(axis=1)
    start = np.maximum.accumulate(np.where(new, np.arange(order.shape[0]), 0))
    order = order[np.arange(order.shape[0]) - start < max_per_antecedent]
    lengths = sizes[order]
    new_off = np.zeros(order.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_off[1:])
    gather = np.repeat(offsets[order], lengths) + (
        np.arange(new_off[-1]) - np.repeat(new_off[:-1], lengths))
    n_y_r = n_y[consequent[order]]
    conf = confidence[order]
    columns = [
        list_array(new_off, values[gather].astype(np.int32), pa.int32()),
        primitive_array(consequent[order], pa.int32()),
        primitive_array(count[order], pa.int64()),
        primitive_array(ante_count[order], pa.int64()),
        primitive_array(n_y_r, pa.int64()),
        primitive_array(count[order] / n_customers, pa.float64()),
        primitive_array(conf, pa.float64()),
        primitive_array(conf / (n_y_r / n_customers), pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=SEQUENTIAL_RULES_SCHEMA)


def _concat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    offsets = [np.zeros(1, dtype=np.int64)]
    shift = 0
    for part in parts:
        offsets.append(part[0][1:] + shift)
        shift += int(part[0][-1])
    return (np.concatenate(offsets),
            *(np.concatenate([np.asarray(p[i], dtype=np.int64) for p in parts])
              for i in range(1, 5)))


def _repeat_table(item: np.ndarray, count: np.ndarray, ante_count: np.ndarray,
                  cons_count: np.ndarray, n_customers: int) -> object:
    import pyarrow as pa

    confidence = count / ante_count
    columns = [
        primitive_array(item, pa.int32()),
        primitive_array(count, pa.int64()),
        primitive_array(ante_count, pa.int64()),
        primitive_array(cons_count, pa.int64()),
        primitive_array(confidence, pa.float64()),
        primitive_array(confidence / (cons_count / n_customers), pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=REPEAT_SCHEMA)
