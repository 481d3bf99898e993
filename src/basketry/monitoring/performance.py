"""Online performance: how each model version does on the orders customers completed.

Two measures per model version and time window (docs/monitoring.md, "Online performance"):

- **replay**: the offline evaluation's hide-one protocol (``basketry.model.protocol``) run on
  the window's completed orders with the model version that was serving at each order's time
  (known from the recommendation events): HR@k, NDCG@k, coverage and fallback share, with 95%
  intervals. The offline figures recorded with the version sit beside them: the same measure.
- **attributed**: for orders that name the recommendation requests shown for them, the share
  of recommended items (among the first k) that were bought (precision@k) and the share of
  shown recommendations with at least one bought item, per version that answered them;
  aggregated in SQL (``aggregates.attributed``).

Closed time windows (ended more than ``GRACE_US`` ago) are computed once and kept in the
store's ``windows`` table; a report reuses them unless an order of the window was received
after they were computed (a late batch ingest), the parameters changed, or a model that was
missing then can now be found. Only the open window and the ones never computed are read from
the events and orders, so a month of daily windows answers in well under the 2 s the issue
asks, on 1M events and 100k orders (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.model import RuleScorer
from basketry.model.protocol import (
    KS,
    MAX_HIDDEN_PER_BASKET,
    MAX_QUERIES,
    build_queries,
    gains,
    mean_interval,
    plan_queries,
    ranks_of_hidden,
    wilson_interval,
)
from basketry.monitoring import aggregates
from basketry.monitoring.aggregates import StoredWindow, VersionSpan
from basketry.monitoring.store import MonitorStoreError
from basketry.monitoring.windows import US, Window
from basketry.monitoring.windows import iso as _iso
from basketry.monitoring.windows import runs as _runs

if TYPE_CHECKING:
    from basketry.monitoring.catalog import Models
    from basketry.monitoring.store import MonitorStore

#: A time window is closed, and stored once computed, this long after its end (events reach
#: the store within seconds; orders sent later by a batch ingest are caught by their receipt).
GRACE_US = 5 * 60 * US
#: Receipts this close before a computation started may belong to orders it did not see yet.
RECEIPT_MARGIN_US = 60 * US
#: The ``windows`` row that records a stored window's parameters and completeness.
MARKER = "window"
#: Shown as the version of orders placed before any recorded recommendation.
UNKNOWN = ""


#: At most this many windows in one report (an hourly report over years is refused).
MAX_WINDOWS = 2_000


class PerformanceError(ValueError):
    """A report that cannot be made as asked (one line naming the value; ``field``: the
    parameter at fault)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Params:
    """The protocol's parameters: part of a stored window's identity."""

    ks: tuple[int, ...] = KS
    max_queries: int | None = MAX_QUERIES
    max_hidden_per_basket: int | None = MAX_HIDDEN_PER_BASKET
    seed: int = 0

    def key(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "max_queries": self.max_queries,
                "max_hidden_per_basket": self.max_hidden_per_basket, "seed": self.seed}


@dataclass
class Cell:
    """One model version in one window: the raw counts both measures are derived from."""

    model_version: str
    start_us: int
    end_us: int
    orders: int = 0
    replay: dict[str, Any] | None = None
    replay_note: str | None = None
    attributed: dict[str, Any] | None = None


@dataclass
class Report:
    """A performance report (see :meth:`to_json` for its shape)."""

    window: Window
    since_us: int
    until_us: int
    now_us: int
    params: Params
    cells: list[Cell]
    versions: dict[str, dict[str, Any]]
    reused: int = 0
    computed: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window.label,
            "since": _iso(self.since_us),
            "until": _iso(self.until_us),
            "ks": list(self.params.ks),
            "protocol": self.params.key(),
            "versions": self.versions,
            "windows": [cell_json(c, self.params.ks, self.now_us) for c in self.cells],
            "windows_reused": self.reused,
            "windows_computed": self.computed,
            "notes": self.notes,
        }


def performance(store: MonitorStore, models: Models, *, window: Window,
                since: float | None = None, until: float | None = None,
                model_version: str | None = None, params: Params | None = None,
                now: float | None = None, reuse: bool = True) -> Report:
    """The online performance per model version and window between ``since`` and ``until``
    (seconds since the epoch; default: the window's usual span up to now)."""
    params = params or Params()
    now_us = round((time.time() if now is None else now) * US)
    until_us = now_us if until is None else round(until * US)
    since_us = until_us - window.default_span_us() if since is None else round(since * US)
    if since_us >= until_us:
        raise PerformanceError(f"since ({_iso(since_us)}) must be before until "
                               f"({_iso(until_us)})", "since")
    if window.timed and (until_us - since_us) / window.width_us > MAX_WINDOWS:
        raise PerformanceError(f"{window.label} windows from {_iso(since_us)} to "
                               f"{_iso(until_us)} are more than {MAX_WINDOWS:,}: ask for a "
                               "shorter period or a coarser window", "window")
    with store._errors("reading the online performance"), store.engine.connect() as c:
        spans = aggregates.version_spans(c)
        known = [s.model_version for s in spans]
        if model_version is not None and model_version not in known:
            listed = ", ".join(known[-5:]) if known else "none yet"
            raise PerformanceError(f"model version {model_version!r} answered no recommendation "
                                   f"in the store (versions seen: {listed})", "model_version")
        if window.timed:
            cells, reused, computed = _timed(store, c, models, window, since_us, until_us,
                                             now_us, spans, params, reuse)
        else:
            cells = _by_orders(c, models, window, since_us, until_us, spans, params)
            reused, computed = 0, len({x.start_us for x in cells})
    if model_version is not None:
        cells = [x for x in cells if x.model_version == model_version]
    versions = _versions(spans, models, {x.model_version for x in cells}, params.ks)
    notes: list[str] = []
    return Report(window, since_us, until_us, now_us, params, cells, versions, reused,
                  computed, notes)


# -- time windows, stored once closed ----------------------------------------------------

def _timed(store: MonitorStore, c: Any, models: Models, window: Window, since_us: int,
           until_us: int, now_us: int, spans: list[VersionSpan], params: Params,
           reuse: bool) -> tuple[list[Cell], int, int]:
    first = window.start_of(since_us)
    end = window.start_of(until_us - 1) + window.width_us
    starts = list(range(first, end, window.width_us))
    # what is stored is stamped with the clock before anything is read, less a margin for
    # an order whose receipt was stamped before its transaction committed: an order that
    # came in meanwhile makes the window be computed again next time
    computed_us = round(time.time() * US) - RECEIPT_MARGIN_US
    valid: dict[int, list[Cell]] = {}
    if reuse:
        receipts = aggregates.latest_receipts(c, first, end, window.width_us, window.origin_us)
        by_start: dict[int, list[StoredWindow]] = {}
        for row in aggregates.stored_windows(c, window.name, first, end):
            by_start.setdefault(row.start_us, []).append(row)
        for start, rows in by_start.items():
            if _still_valid(rows, receipts.get(start, 0), params, models):
                valid[start] = [_cell_of(r) for r in rows if r.kind == "replay"]
                _merge_attributed(valid[start], rows)
    cells: list[Cell] = []
    fresh: dict[int, list[Cell]] = {}
    for a, b in _runs([s for s in starts if s not in valid], window.width_us):
        orders = aggregates.order_items(c, a, b)
        bucket = window.starts(orders.time_us)
        attributed = aggregates.attributed(c, a, b, params.ks)
        for cell in _cells(orders, bucket, attributed, window.starts(attributed.time_us),
                           lambda s: s + window.width_us, spans, models, params):
            fresh.setdefault(cell.start_us, []).append(cell)
        for s in range(a, b, window.width_us):
            fresh.setdefault(s, [])
    closed = [s for s in fresh if s + window.width_us + GRACE_US <= now_us]
    if closed:
        rows = []
        for s in closed:
            # the real clock, whatever ``now`` the report is for: compared with orders' receipts
            rows += _stored_rows(fresh[s], s, s + window.width_us, params, models, computed_us)
        try:
            with store._errors("storing computed windows"), store.engine.begin() as w:
                aggregates.replace_windows(w, window.name, closed, rows,
                                           kinds=(MARKER, "replay", "attributed"))
        except MonitorStoreError as exc:
            if not _conflict(exc):
                raise
            # another process stored the same windows meanwhile: the same figures, kept
    for s in starts:
        cells += valid.get(s, fresh.get(s, []))
    return cells, len(valid), len(fresh)


def _still_valid(rows: list[StoredWindow], received_us: int, params: Params,
                 models: Models) -> bool:
    marker = next((r for r in rows if r.kind == MARKER), None)
    if marker is None or marker.metrics.get("params") != params.key():
        return False
    if marker.computed_us < received_us:  # an order of the window came in since
        return False
    return not any(models.has(v) for v in marker.metrics.get("missing_models", []))


def _stored_rows(cells: list[Cell], start: int, end: int, params: Params, models: Models,
                 computed_us: int) -> list[StoredWindow]:
    missing = sorted({x.model_version for x in cells
                      if x.replay is None and x.model_version != UNKNOWN and x.orders})
    rows = [StoredWindow(MARKER, "", start, end, sum(x.orders for x in cells),
                         {"params": params.key(), "missing_models": missing}, computed_us)]
    for x in cells:
        rows.append(StoredWindow("replay", x.model_version, start, end, x.orders,
                                 {"replay": x.replay, "note": x.replay_note}, computed_us))
        if x.attributed is not None:
            rows.append(StoredWindow("attributed", x.model_version, start, end,
                                     x.attributed["orders"], x.attributed, computed_us))
    return rows


def _cell_of(row: StoredWindow) -> Cell:
    return Cell(row.model_version, row.start_us, row.end_us, row.n,
                row.metrics.get("replay"), row.metrics.get("note"))


def _merge_attributed(cells: list[Cell], rows: list[StoredWindow]) -> None:
    by_version = {x.model_version: x for x in cells}
    for r in rows:
        if r.kind == "attributed":
            cell = by_version.get(r.model_version)
            if cell is None:
                cell = Cell(r.model_version, r.start_us, r.end_us)
                cells.append(cell)
            cell.attributed = dict(r.metrics)
    cells.sort(key=lambda x: x.model_version)


def _conflict(exc: Exception) -> bool:
    """Whether a store failure is a unique key taken by a concurrent writer."""
    cause = exc.__cause__ or exc.__context__
    import sqlalchemy as sa

    return isinstance(cause, sa.exc.IntegrityError) or "UNIQUE constraint" in str(exc) \
        or "duplicate key" in str(exc)


# -- windows of N orders (computed each time) --------------------------------------------

def _by_orders(c: Any, models: Models, window: Window, since_us: int, until_us: int,
               spans: list[VersionSpan], params: Params) -> list[Cell]:
    orders = aggregates.order_items(c, since_us, until_us)
    if orders.n_orders > MAX_WINDOWS * window.n_orders:
        raise PerformanceError(f"{orders.n_orders:,} orders in windows of {window.n_orders:,} "
                               f"are more than {MAX_WINDOWS:,} windows: ask for a shorter "
                               "period or more orders per window", "window")
    index = np.arange(orders.n_orders) // window.n_orders
    # a window's bounds: its first order's time and just after its last one's
    firsts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]]) if orders.n_orders else []
    start_of = {int(index[f]): int(orders.time_us[f]) for f in firsts}
    lasts = np.r_[np.asarray(firsts[1:], dtype=np.int64) - 1, orders.n_orders - 1] \
        if orders.n_orders else []
    end_of = {int(start_of[int(index[f])]): int(orders.time_us[la]) + 1
              for f, la in zip(firsts, lasts, strict=True)}
    bucket = np.array([start_of[int(i)] for i in index], dtype=np.int64)
    attributed = aggregates.attributed(c, since_us, until_us, params.ks)
    order_bucket = dict(zip(orders.pk.tolist(), bucket.tolist(), strict=True))
    att_bucket = np.array([order_bucket.get(int(p), -1) for p in attributed.order_pk],
                          dtype=np.int64)
    return _cells(orders, bucket, attributed, att_bucket, lambda s: end_of.get(s, s + 1),
                  spans, models, params)


# -- the measures --------------------------------------------------------------------------

def serving_versions(times_us: np.ndarray, spans: Sequence[VersionSpan]) -> np.ndarray:
    """Index into ``spans`` of the version serving at each time, -1 before any event: among
    the versions whose events span the time, the one deployed last (first seen latest); in a
    gap, the version seen last before it. A rollback (v1, then v2, then v1 again) reads right:
    v1's span covers v2's, and v2 was deployed later."""
    t = np.asarray(times_us, dtype=np.int64)
    out = np.full(t.shape[0], -1, dtype=np.int64)
    for i, s in enumerate(spans):  # oldest first: a later deployment overrides
        out[(t >= s.first_us) & (t <= s.last_us)] = i
    gap = np.flatnonzero(out < 0)
    if gap.size and spans:
        lasts = np.array([s.last_us for s in spans], dtype=np.int64)
        order = np.argsort(lasts, kind="stable")
        before = np.searchsorted(lasts[order], t[gap], side="right") - 1
        out[gap] = np.where(before >= 0, order[np.maximum(before, 0)], -1)
    return out


def _cells(orders: aggregates.OrderItems, bucket: np.ndarray, att: aggregates.Attributed,
           att_bucket: np.ndarray, end_of: Any, spans: Sequence[VersionSpan], models: Models,
           params: Params) -> list[Cell]:
    serving = serving_versions(orders.time_us, spans)
    names = [s.model_version for s in spans]
    cells: dict[tuple[str, int], Cell] = {}

    def cell(version: str, start: int) -> Cell:
        key = (version, start)
        if key not in cells:
            cells[key] = Cell(version, start, int(end_of(start)))
        return cells[key]

    for v in np.unique(serving):
        chosen = np.flatnonzero(serving == v)
        version = names[v] if v >= 0 else UNKNOWN
        scorer, note = _scorer(models, version)
        for start in np.unique(bucket[chosen]):
            rows = chosen[bucket[chosen] == start]
            x = cell(version, int(start))
            x.orders = int(rows.shape[0])
            if scorer is None:
                x.replay_note = note
            else:
                x.replay = replay_counts(scorer, orders, rows, params)
    keep = np.flatnonzero(att_bucket >= 0)
    if keep.size:
        codes = {v: i for i, v in enumerate(dict.fromkeys(att.model_version))}
        version_code = np.array([codes[v] for v in att.model_version], dtype=np.int64)[keep]
        groups, inverse = np.unique(np.stack([version_code, att_bucket[keep]], axis=1),
                                    axis=0, return_inverse=True)
        inverse = inverse.ravel()

        def summed(values: np.ndarray) -> np.ndarray:
            return np.bincount(inverse, weights=values[keep], minlength=len(groups))

        n_orders = np.bincount(inverse, minlength=len(groups))
        shown = summed(att.shown)
        per_k = [(k, summed(att.hit[:, j]), summed(att.bought[:, j]), summed(att.returned[:, j]))
                 for j, k in enumerate(params.ks)]
        by_code = list(codes)
        for g, (code, start) in enumerate(groups.tolist()):
            a: dict[str, int] = {"orders": int(n_orders[g]), "shown": int(shown[g])}
            for k, hit, bought, returned in per_k:
                a |= {f"hit@{k}": int(hit[g]), f"bought@{k}": int(bought[g]),
                      f"returned@{k}": int(returned[g])}
            cell(by_code[code], int(start)).attributed = a
    return sorted(cells.values(), key=lambda x: (x.start_us, x.model_version))


def _scorer(models: Models, version: str) -> tuple[RuleScorer | None, str | None]:
    if version == UNKNOWN:
        return None, "placed before any recorded recommendation: the serving model is unknown"
    scorer = models.scorer(version)
    if scorer is None:
        return None, (f"model version {version} not found (give its directory with --model, "
                      "or register it)")
    return scorer, None


def replay_counts(scorer: RuleScorer, orders: aggregates.OrderItems, rows: np.ndarray,
                  params: Params) -> dict[str, Any]:
    """The hide-one protocol on the orders at ``rows`` with ``scorer``: the counts that the
    window's figures and intervals are derived from."""
    start, stop = orders.indptr[rows], orders.indptr[rows + 1]
    sizes = stop - start
    flat = np.repeat(start, sizes) + (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes,
                                                                         sizes))
    lookup = scorer.item_ids
    ids = np.fromiter((lookup.get(orders.items[i], -1) for i in flat), dtype=np.int64,
                      count=flat.shape[0])
    basket = np.repeat(np.arange(rows.shape[0]), sizes)
    ids = ids[np.lexsort((ids, basket))]  # ascending within each order, as the scorer takes
    indptr = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    plan = plan_queries(sizes, max_queries=params.max_queries,
                        max_hidden_per_basket=params.max_hidden_per_basket, seed=params.seed)
    ptr, items, hidden = build_queries(indptr, ids, plan)
    k = max(params.ks)
    out: dict[str, Any] = {"orders": int(rows.shape[0]),
                           "eligible_orders": plan.n_eligible_baskets,
                           "candidate_queries": plan.n_candidate_queries,
                           "queries": int(hidden.shape[0]),
                           "hidden_unknown_to_model": int((hidden < 0).sum()),
                           "n_items": len(scorer.items)}
    if hidden.shape[0] == 0:
        top, from_rules = np.zeros((0, k), np.int64), np.zeros(0, np.int64)
    else:
        top, from_rules = scorer.top_items(ptr, items, k)
    ranks = ranks_of_hidden(top, hidden)
    for kk in params.ks:
        g = gains(ranks, kk)
        out[f"hits@{kk}"] = int(((ranks > 0) & (ranks <= kk)).sum())
        out[f"ndcg_sum@{kk}"] = float(g.sum())
        out[f"ndcg_sq@{kk}"] = float((g * g).sum())
    out["fallback_answers"] = int((from_rules < k).sum())
    out["fallback_slots"] = int((k - from_rules).sum())
    out["recommended_items"] = int(np.unique(top[top >= 0]).shape[0])
    return out


# -- presentation ----------------------------------------------------------------------------

def _figure(value: float | None, ci: tuple[float, float] | None) -> dict[str, Any]:
    return {"value": value, "ci95": list(ci) if ci is not None else None}


def replay_figures(r: Mapping[str, Any], ks: Sequence[int]) -> dict[str, Any]:
    """HR@k and NDCG@k with their 95% intervals, coverage and fallback shares, from counts."""
    n = int(r["queries"])
    out: dict[str, Any] = {"orders": r["orders"], "queries": n,
                           "hidden_unknown_to_model": r["hidden_unknown_to_model"]}
    for k in ks:
        hits = r[f"hits@{k}"]
        out[f"hit_rate@{k}"] = _figure(hits / n if n else None, wilson_interval(hits, n))
        total, sq = r[f"ndcg_sum@{k}"], r[f"ndcg_sq@{k}"]
        out[f"ndcg@{k}"] = _figure(total / n if n else None, mean_interval(total, sq, n))
    out["item_coverage"] = r["recommended_items"] / max(int(r["n_items"]), 1) if n else None
    fb = r["fallback_answers"]
    out["fallback_share"] = _figure(fb / n if n else None, wilson_interval(fb, n))
    slots = n * max(ks)
    out["fallback_item_share"] = r["fallback_slots"] / slots if slots else None
    return out


def attributed_figures(a: Mapping[str, Any], ks: Sequence[int]) -> dict[str, Any]:
    """Precision@k (returned items bought) and the share of shown recommendations with a
    bought item, with 95% Wilson intervals, from counts."""
    shown = int(a["shown"])
    out: dict[str, Any] = {"orders": a["orders"], "shown": shown}
    for k in ks:
        returned, bought, hit = a[f"returned@{k}"], a[f"bought@{k}"], a[f"hit@{k}"]
        out[f"precision@{k}"] = _figure(bought / returned if returned else None,
                                        wilson_interval(bought, returned))
        out[f"hit_share@{k}"] = _figure(hit / shown if shown else None,
                                        wilson_interval(hit, shown))
    return out


def cell_json(x: Cell, ks: Sequence[int], now_us: int) -> dict[str, Any]:
    return {
        "model_version": x.model_version or None,
        "start": _iso(x.start_us),
        "end": _iso(x.end_us),
        "closed": x.end_us + GRACE_US <= now_us,
        "orders": x.orders,
        "replay": replay_figures(x.replay, ks) if x.replay is not None else None,
        "replay_note": x.replay_note,
        "attributed": attributed_figures(x.attributed, ks) if x.attributed else None,
    }


def _versions(spans: Sequence[VersionSpan], models: Models, shown: set[str],
              ks: Sequence[int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in spans:
        if s.model_version not in shown:
            continue
        offline = models.offline(s.model_version)
        figures = None
        if offline is not None:
            m = offline["metrics"]
            figures = {name: m.get(name) for k in ks
                       for name in (f"hit_rate@{k}", f"ndcg@{k}")}
            figures |= {"item_coverage": m.get("item_coverage"),
                        "fallback_share": m.get("fallback_share"),
                        "queries": (offline.get("queries") or {}).get("n_queries")}
        out[s.model_version] = {"first_seen": _iso(s.first_us), "last_seen": _iso(s.last_us),
                                "recommendations": s.events,
                                "model_available": models.has(s.model_version),
                                "offline": figures}
    return out
