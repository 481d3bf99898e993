"""Data drift: does what production sees still look like what the model was trained on?

Pure functions of a model's training reference (:class:`~basketry.model.profile.ReferenceProfile`)
and one window's baskets (:class:`~basketry.monitoring.drift_types.Baskets`, an order's items
or a request's basket, distinct within a basket), each returning a
:class:`~basketry.monitoring.drift_types.DriftResult`:

- :func:`item_drift` (``items_orders``, ``items_requests``): the Jensen-Shannon distance
  between the window's and the training's item-occurrence shares, over the items the model
  knows (unknown items are :func:`unknown_share_drift`'s), with PSI and L-infinity beside it
  and the items that drive it;
- :func:`basket_size_drift`: the same distance between basket-size histograms;
- :func:`unknown_share_drift`: the share of occurrences the model does not know, against a
  tolerated share;
- :func:`new_top_items`: items in the window's top k that were not in the training top k.

Every threshold is calibrated for the window's sample size (``_drift_null``) so that a window
without change alarms with probability ``false_alarm_rate``: an effect size with a
size-aware threshold, not a chi-square p-value (which alarms on every negligible change once
windows are large) nor a fixed distance such as 0.1 (too strict for small windows, where
sampling noise alone exceeds it, and too lax for large ones). docs/monitoring.md, "Data drift".
A window without baskets gives ``n = 0``, ``drifted = False`` and a ``reason``.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import repeat
from typing import Any

import numpy as np

from basketry.model.profile import ReferenceProfile
from basketry.monitoring import _drift_null as null
from basketry.monitoring.drift_types import Baskets, DriftResult

#: The statistic of the distribution detectors.
JS = "jensen_shannon"
#: PSI is reported with shares floored at this (the usual convention: an empty category
#: would make it infinite).
PSI_FLOOR = 1e-4
#: The independent-count law leaves out that items co-occur in baskets (bundles, customer
#: segments), which widens the item divergence's spread under no change: measured on windows
#: of real baskets drawn at random, its standard deviation is 0.96 to 1.22 times the law's
#: (groceries, retail, T10I4D100K; docs/monitoring.md, "Data drift"). The threshold widens
#: it by a little more, so the false alarm rate stays at or under its setting.
DISPERSION = 1.25
#: Unknown items tolerated as a share of the window's item occurrences.
TOLERATED_UNKNOWN_SHARE = 0.01
#: The size of the top compared by :func:`new_top_items`.
TOP_K = 20

_EMPTY = {"items_orders": "no orders in the window",
          "items_requests": "no recommendation requests in the window"}


class _Window:
    """A window's items mapped to the reference's ids (-1 for an unknown item)."""

    def __init__(self, prep: null.Prepared, window: Baskets) -> None:
        self.n = window.n
        self.names = window.items
        n_entries = len(window.items)
        self.ids = np.fromiter(map(prep.index.get, window.items, repeat(-1, n_entries)),
                               dtype=np.int64, count=n_entries)
        known = self.ids[self.ids >= 0]
        self.counts = np.bincount(known, minlength=len(prep.reference.items))
        self.n_known = int(known.shape[0])
        self.n_unknown = n_entries - self.n_known

    def unknown_counts(self) -> Counter[str]:
        return Counter(self.names[j] for j in np.flatnonzero(self.ids < 0).tolist())


def _result(detector: str, reference: ReferenceProfile, start_us: int, end_us: int,
            statistic: str, value: float, threshold: float | None, n: int,
            details: dict[str, Any]) -> DriftResult:
    drifted = threshold is not None and n > 0 and value > threshold
    return DriftResult(detector, reference.model_version, start_us, end_us, statistic,
                       float(value), None if threshold is None else float(threshold),
                       bool(drifted), n, details)


def _no_data(detector: str, reference: ReferenceProfile, start_us: int, end_us: int,
             statistic: str, reason: str, n: int = 0) -> DriftResult:
    return _result(detector, reference, start_us, end_us, statistic, 0.0, None, n,
                   {"reason": reason})


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    pf, qf = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(((pf - qf) * np.log(pf / qf)).sum())


def _label(reference: ReferenceProfile, i: int) -> str | None:
    return reference.labels[i] if i < len(reference.labels) else None


def item_drift(reference: ReferenceProfile, window: Baskets, *,
               detector: str = "items_orders", start_us: int, end_us: int,
               false_alarm_rate: float = 0.01, seed: int = 0, top: int = 10,
               dispersion: float = DISPERSION) -> DriftResult:
    """The window's item-occurrence shares against the training's, over the items the model
    knows: Jensen-Shannon distance (nats, in [0, sqrt(ln 2)]) with a threshold calibrated for
    the window's baskets and known occurrences. Items expected fewer than 5 times at the
    window's size are pooled, in training rank order, into bands expected about 5 times
    each (``categories``, of which ``single_items`` are items on their own;
    ``_drift_null.MIN_EXPECTED``, ``BAND_EXPECTED``). ``details``: ``psi``, ``l_inf``
    (and its ``l_inf_item``), item by item; ``n_baskets``, ``n_entries`` (known
    occurrences), ``unknown_entries``, ``expected_value`` (the distance's null mean) and
    ``top_contributors``, the items whose term of an item-by-item divergence most exceeds
    what sampling alone gives it. ``seed`` is unused (the item threshold is computed, not
    resampled): kept for one signature across the detectors."""
    del seed
    if window.n == 0:
        return _no_data(detector, reference, start_us, end_us, JS,
                        _EMPTY.get(detector, "no baskets in the window"))
    prep = null.prepared(reference)
    return _item_drift(prep, _Window(prep, window), detector, start_us, end_us,
                       false_alarm_rate, top, dispersion)


def _item_drift(prep: null.Prepared, win: _Window, detector: str, start_us: int, end_us: int,
                false_alarm_rate: float, top: int, dispersion: float) -> DriftResult:
    reference = prep.reference
    if win.n_known == 0:
        return _no_data(detector, reference, start_us, end_us, JS,
                        "none of the window's items is known to the model", n=win.n)
    q = prep.shares
    p = win.counts / win.n_known
    # baskets' worth of known occurrences: unknown items took the rest of the window
    n_eff = max(1, round(win.n * win.n_known / (win.n_known + win.n_unknown)))
    law = null.item_null(prep, n_eff, win.n_known, false_alarm_rate, dispersion)
    cats = law.categories
    divergence = float(null.js_terms(
        np.bincount(cats.of_item, weights=win.counts, minlength=cats.shares.shape[0])
        / win.n_known, cats.shares).sum())
    expected = np.where(prep.group_of >= 0,
                        law.group_mean[np.maximum(prep.group_of, 0)], 0.0)
    excess = null.js_terms(p, q) - expected
    gap = np.abs(p - q)
    worst = int(np.argmax(gap))
    details: dict[str, Any] = {
        "psi": _psi(p, q), "l_inf": float(gap[worst]),
        "l_inf_item": reference.items[worst],
        "n_baskets": win.n, "n_entries": win.n_known, "unknown_entries": win.n_unknown,
        "categories": int(cats.shares.shape[0]), "single_items": cats.singles,
        "expected_value": math.sqrt(law.mean),
        "top_contributors": _contributors(reference, p, q, excess, top),
    }
    return _result(detector, reference, start_us, end_us, JS, math.sqrt(divergence),
                   math.sqrt(law.threshold), win.n, details)


def _contributors(reference: ReferenceProfile, p: np.ndarray, q: np.ndarray,
                  excess: np.ndarray, top: int) -> list[dict[str, Any]]:
    k = min(top, int((excess > 0).sum()))
    if k <= 0:
        return []
    chosen = np.argpartition(-excess, k - 1)[:k]
    chosen = chosen[np.lexsort((chosen, -excess[chosen]))]
    return [{"item": reference.items[i], "label": _label(reference, i),
             "reference_share": float(q[i]), "window_share": float(p[i]),
             "contribution": float(excess[i])} for i in chosen.tolist()]


def basket_size_drift(reference: ReferenceProfile, window: Baskets, *, start_us: int,
                      end_us: int, false_alarm_rate: float = 0.01,
                      seed: int = 0) -> DriftResult:
    """The window's basket sizes binned by the training histogram's edges (the last bin
    open-ended): Jensen-Shannon distance to the training shares, the threshold resampled
    from the training histogram at the window's number of baskets. ``details``: ``psi``,
    ``l_inf``, ``mean_size`` and ``reference_mean_size``, ``n_baskets``, ``bins`` (every bin
    in order: its sizes, shares and term of the divergence)."""
    detector = "basket_size"
    if window.n == 0:
        return _no_data(detector, reference, start_us, end_us, JS, "no orders in the window")
    prep = null.prepared(reference)
    sizes = window.sizes
    p = null.size_bins(reference, sizes) / window.n
    q = reference.size_shares
    terms = null.js_terms(p, q)
    threshold = null.size_threshold(prep, window.n, false_alarm_rate, seed)
    edges = reference.size_edges.tolist()
    last = len(edges) - 2
    bins = [{"bin": f"{edges[b]}+" if b == last else
             (str(edges[b]) if edges[b + 1] == edges[b] + 1
              else f"{edges[b]}-{edges[b + 1] - 1}"),
             "reference_share": float(q[b]), "window_share": float(p[b]),
             "contribution": float(terms[b])}
            for b in range(len(edges) - 1)]
    details: dict[str, Any] = {
        "psi": _psi(p, q), "l_inf": float(np.abs(p - q).max()),
        "mean_size": float(sizes.mean()),
        "reference_mean_size": reference.n_entries / max(reference.n_baskets, 1),
        "n_baskets": window.n, "bins": bins,
    }
    return _result(detector, reference, start_us, end_us, JS, math.sqrt(float(terms.sum())),
                   math.sqrt(threshold), window.n, details)


def unknown_share_drift(reference: ReferenceProfile, window: Baskets, *, start_us: int,
                        end_us: int, false_alarm_rate: float = 0.01, seed: int = 0,
                        tolerated_share: float = TOLERATED_UNKNOWN_SHARE,
                        top: int = 10) -> DriftResult:
    """The share of the window's item occurrences the model does not know. It is 0 in
    training by construction, so the null is "at most ``tolerated_share``": the window
    alarms when the lower Wilson bound of its share (at 1 - false_alarm_rate) exceeds the
    tolerated share, i.e. when the share exceeds ``tolerated + z sqrt(tolerated (1 -
    tolerated) / N)`` (the score test the Wilson interval inverts; ``N`` occurrences), which is
    the threshold reported. ``details``: ``unknown_entries``, ``n_entries``, ``n_baskets``,
    ``tolerated_share``, ``top_unknown`` (the most frequent unknown items and their shares)."""
    del seed
    detector = "unknown_share"
    if window.n == 0 or not window.items:
        return _no_data(detector, reference, start_us, end_us, "share",
                        "no orders in the window" if window.n == 0
                        else "no items in the window's orders", n=window.n)
    prep = null.prepared(reference)
    return _unknown_share(prep, _Window(prep, window), start_us, end_us, false_alarm_rate,
                          tolerated_share, top)


def _unknown_share(prep: null.Prepared, win: _Window, start_us: int, end_us: int,
                   false_alarm_rate: float, tolerated_share: float, top: int) -> DriftResult:
    n_entries = win.n_known + win.n_unknown
    share = win.n_unknown / n_entries
    from scipy.special import ndtri

    z = float(ndtri(1.0 - false_alarm_rate))
    u0 = tolerated_share
    threshold = u0 + z * math.sqrt(u0 * (1.0 - u0) / n_entries)
    unknown = win.unknown_counts().most_common(top) if win.n_unknown else []
    details: dict[str, Any] = {
        "unknown_entries": win.n_unknown, "n_entries": n_entries, "n_baskets": win.n,
        "tolerated_share": u0,
        "top_unknown": [{"item": item, "count": count, "window_share": count / n_entries}
                        for item, count in unknown],
    }
    return _result("unknown_share", prep.reference, start_us, end_us, "share", share,
                   threshold, win.n, details)


def new_top_items(reference: ReferenceProfile, window: Baskets, *, k: int = TOP_K,
                  start_us: int, end_us: int, false_alarm_rate: float = 0.01,
                  seed: int = 0) -> DriftResult:
    """Items in the window's top ``k`` (baskets holding them; ties go to the item ranked
    higher in training, so a tie never makes an entrant) that are not in the training top
    ``k``, unknown items included. Items near the k-th rank trade places by chance, so the
    statistic weighs each entrant by how high it ranks: ``(k + 1 - window_rank) / k`` (1 at
    the head, 1/k at the edge), summed (``weighted_entrants``); the threshold is the sum that
    windows without change exceed with probability at most ``false_alarm_rate`` (resampled at
    the window's size). ``details``: ``k``, ``n_baskets``, ``count`` and ``entrants`` (item,
    label, known, reference_rank, window_rank, window_share, reference_share)."""
    detector = "new_top_items"
    if window.n == 0 or not window.items:
        return _no_data(detector, reference, start_us, end_us, "weighted_entrants",
                        "no orders in the window" if window.n == 0
                        else "no items in the window's orders", n=window.n)
    prep = null.prepared(reference)
    return _new_top(prep, _Window(prep, window), k, start_us, end_us, false_alarm_rate, seed)


def _new_top(prep: null.Prepared, win: _Window, k: int, start_us: int, end_us: int,
             false_alarm_rate: float, seed: int) -> DriftResult:
    reference = prep.reference
    n_items = len(reference.items)
    n_entries = win.n_known + win.n_unknown
    known = np.flatnonzero(win.counts)
    unknown = win.unknown_counts() if win.n_unknown else Counter()
    # window order: count desc, then training rank (unknown items after every known one),
    # then the item
    best = known[np.lexsort((prep.rank[known], -win.counts[known]))[:k]]
    rows = [(-int(win.counts[i]), int(prep.rank[i]), reference.items[i], i)
            for i in best.tolist()]
    rows += [(-count, n_items, item, -1) for item, count in unknown.most_common(k)]
    rows.sort()
    entrants = []
    for position, (neg, rank, item, i) in enumerate(rows[:k]):
        if rank < k:
            continue
        entrants.append({
            "item": item, "label": _label(reference, i) if i >= 0 else None,
            "known": i >= 0, "reference_rank": rank + 1 if i >= 0 else None,
            "window_rank": position + 1, "window_share": -neg / n_entries,
            "reference_share": float(prep.shares[i]) if i >= 0 else 0.0})
    threshold = null.top_threshold(prep, win.n, max(win.n_known, 1), k, false_alarm_rate,
                                   seed, DISPERSION)
    value = sum(null.entrant_weight(e["window_rank"], k) for e in entrants)
    details: dict[str, Any] = {"k": k, "n_baskets": win.n, "count": len(entrants),
                               "entrants": entrants}
    return _result("new_top_items", reference, start_us, end_us, "weighted_entrants", value,
                   threshold, win.n, details)


def data_drift(reference: ReferenceProfile, orders: Baskets, requests: Baskets | None = None,
               *, start_us: int, end_us: int, false_alarm_rate: float = 0.01,
               seed: int = 0) -> list[DriftResult]:
    """Every data-drift detector on one window: ``items_orders``, ``items_requests`` (when
    ``requests`` are given), ``basket_size``, ``unknown_share`` and ``new_top_items``."""
    prep = null.prepared(reference)
    span = (start_us, end_us)
    # each window's items are mapped to the model's once, for every detector that reads them
    mapped = {"items_orders": _Window(prep, orders) if orders.n else None,
              "items_requests": _Window(prep, requests) if requests is not None and requests.n
              else None}
    results = []
    for detector in ("items_orders", "items_requests"):
        win = mapped[detector]
        if detector == "items_requests" and requests is None:
            continue
        results.append(_no_data(detector, reference, *span, JS, _EMPTY[detector])
                       if win is None else
                       _item_drift(prep, win, detector, *span, false_alarm_rate, 10,
                                   DISPERSION))
    results.append(basket_size_drift(reference, orders, start_us=start_us, end_us=end_us,
                                     false_alarm_rate=false_alarm_rate, seed=seed))
    win = mapped["items_orders"]
    if win is None or win.n_known + win.n_unknown == 0:
        results.append(unknown_share_drift(reference, orders, start_us=start_us,
                                           end_us=end_us))
        results.append(new_top_items(reference, orders, start_us=start_us, end_us=end_us))
    else:
        results.append(_unknown_share(prep, win, *span, false_alarm_rate,
                                      TOLERATED_UNKNOWN_SHARE, 10))
        results.append(_new_top(prep, win, TOP_K, *span, false_alarm_rate, seed))
    return results
