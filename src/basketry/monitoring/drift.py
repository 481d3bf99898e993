"""Drift per model version and window: the detectors run on the store's windows, the results
stored once a window is closed, the alerts raised.

For each window (hour, day, week, or N orders) and each model version that served in it:

- the orders placed while it served (the version serving at each order's time, as the replay
  of ``performance`` decides) and the recommendation requests it answered are compared with
  its training reference (``basketry.model.profile``): ``drift_data.data_drift``;
- its rules are recomputed on those orders and the recommendations it served are checked
  against the rules found broken: ``drift_concept.concept_drift``;
- over the period, a sequential change detector reads its online hit rate (the replay's
  HR@10 per window): ``drift_concept.hit_rate_changes``.

Closed time windows are computed once and kept in ``drift_results`` with a marker row (the
settings they were computed with, the versions whose model was missing); a later run reuses
them unless an order of the window arrived since, the settings changed, or a missing model
was found. The hit-rate detector is sequential, so it is run over the whole period each
time (its input, the replay's windows, is itself stored).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from basketry.model import ModelError
from basketry.monitoring import aggregates
from basketry.monitoring.drift_types import Baskets, DriftResult, ServedRecommendations
from basketry.monitoring.performance import (
    GRACE_US,
    MAX_WINDOWS,
    RECEIPT_MARGIN_US,
    PerformanceError,
    performance,
    serving_versions,
)
from basketry.monitoring.windows import US, Window
from basketry.monitoring.windows import iso as _iso
from basketry.monitoring.windows import runs as _runs

if TYPE_CHECKING:
    from basketry.monitoring.catalog import Models
    from basketry.monitoring.store import MonitorStore

#: The marker row's ``feature``: a stored window's settings and the models it missed.
MARKER = "window"
HIT_RATE = "hit_rate_change"


@dataclass(frozen=True)
class DriftSettings:
    """How sensitive the detectors are: part of a stored window's identity."""

    false_alarm_rate: float = 0.01
    fdr: float = 0.01
    seed: int = 0

    def key(self) -> dict[str, Any]:
        return {"false_alarm_rate": self.false_alarm_rate, "fdr": self.fdr, "seed": self.seed}


@dataclass
class DriftReport:
    window: Window
    since_us: int
    until_us: int
    settings: DriftSettings
    results: list[dict[str, Any]]
    notes: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    computed: int = 0

    @property
    def drifted(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["drifted"]]

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window.label, "since": _iso(self.since_us),
                "until": _iso(self.until_us), "settings": self.settings.key(),
                "results": [{**r, "start": _iso(r["start_us"]), "end": _iso(r["end_us"])}
                            for r in self.results],
                "notes": self.notes, "windows_reused": self.reused,
                "windows_computed": self.computed}


def drift(store: MonitorStore, models: Models, *, window: Window, since: float | None = None,
          until: float | None = None, settings: DriftSettings | None = None,
          now: float | None = None, reuse: bool = True) -> DriftReport:
    """Run (or reuse) every detector on every window between ``since`` and ``until``."""
    settings = settings or DriftSettings()
    now_us = round((time.time() if now is None else now) * US)
    until_us = now_us if until is None else round(until * US)
    since_us = until_us - window.default_span_us() if since is None else round(since * US)
    if since_us >= until_us:
        raise PerformanceError(f"since ({_iso(since_us)}) must be before until "
                               f"({_iso(until_us)})", "since")
    if window.timed and (until_us - since_us) / window.width_us > MAX_WINDOWS:
        raise PerformanceError(f"{window.label} windows from {_iso(since_us)} to "
                               f"{_iso(until_us)} are more than {MAX_WINDOWS:,}", "window")
    runner = _Runner(models, settings)
    with store._errors("computing drift"), store.engine.connect() as c:
        spans = aggregates.version_spans(c)
        if window.timed:
            rows, reused, computed = _timed(store, c, runner, window, since_us, until_us,
                                            now_us, spans, reuse)
        else:
            rows, reused, computed = _by_orders(c, runner, window, since_us, until_us, spans)
    rows += _hit_rate(store, models, window, since_us, until_us, now_us, settings)
    rows.sort(key=lambda r: (r["start_us"], r["feature"], r["model_version"] or ""))
    return DriftReport(window, since_us, until_us, settings,
                       [r for r in rows if r["feature"] != MARKER], runner.notes, reused,
                       computed)


class _Runner:
    """Runs the detectors for one version on one window's data (models loaded once)."""

    def __init__(self, models: Models, settings: DriftSettings) -> None:
        self.models, self.settings = models, settings
        self.notes: dict[str, str] = {}
        self._profiles: dict[str, Any] = {}

    def _profile(self, version: str) -> tuple[Any, Any]:
        from basketry.model.profile import ModelProfileMissing, reference_profile

        if version not in self._profiles:
            model = self.models.scorer(version)
            if model is None:
                self.notes[version] = (f"model version {version} not found (give its directory "
                                       "with --model, or register it): no drift computed")
                self._profiles[version] = (None, None)
            else:
                try:
                    self._profiles[version] = (model, reference_profile(model))
                except ModelProfileMissing as exc:
                    self.notes[version] = str(exc)
                    self._profiles[version] = (model, None)
                except (ModelError, AttributeError) as exc:
                    self.notes[version] = f"model version {version}: {exc}"
                    self._profiles[version] = (model, None)
        return self._profiles[version]

    def run(self, version: str, start_us: int, end_us: int, orders: Baskets,
            served: ServedRecommendations) -> list[DriftResult] | None:
        """``None`` when the version's model or its reference is missing."""
        from basketry.monitoring.drift_concept import concept_drift
        from basketry.monitoring.drift_data import data_drift

        model, reference = self._profile(version)
        if model is None:
            return None
        s = self.settings
        out: list[DriftResult] = []
        if reference is not None:
            out += data_drift(reference, orders, served.requests, start_us=start_us,
                              end_us=end_us, false_alarm_rate=s.false_alarm_rate, seed=s.seed)
        out += concept_drift(model, orders, served, start_us=start_us, end_us=end_us,
                             fdr=s.fdr)
        for r in out:
            r.model_version = version
        return out


def _subset(indptr: np.ndarray, items: list[str], rows: np.ndarray) -> Baskets:
    """The baskets at ``rows`` of a CSR of names."""
    start, stop = indptr[rows], indptr[rows + 1]
    sizes = stop - start
    flat = np.repeat(start, sizes) + (np.arange(int(sizes.sum()))
                                      - np.repeat(np.cumsum(sizes) - sizes, sizes))
    ptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    return Baskets(ptr, [items[i] for i in flat])


def _window_rows(runner: _Runner, spans: list[aggregates.VersionSpan], start_us: int,
                 end_us: int, orders: aggregates.OrderItems, order_rows: np.ndarray,
                 events: aggregates.EventItems, event_rows: np.ndarray,
                 computed_us: int) -> list[dict[str, Any]]:
    """Every detector's result for every version in one window, and the window's marker."""
    serving = serving_versions(orders.time_us[order_rows], spans)
    names = [s.model_version for s in spans]
    order_version = [names[i] if i >= 0 else "" for i in serving]
    event_version = [events.model_version[i] for i in event_rows]
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    for version in sorted(set(order_version) | set(event_version)):
        if not version:
            continue
        mine_o = order_rows[np.array([v == version for v in order_version], dtype=bool)] \
            if order_rows.size else order_rows
        mine_e = event_rows[np.array([v == version for v in event_version], dtype=bool)] \
            if event_rows.size else event_rows
        requests = _subset(events.basket_ptr, events.basket_items, mine_e)
        rule_counts = events.rule_ptr[mine_e + 1] - events.rule_ptr[mine_e]
        returned = _subset(events.rule_ptr, events.rule_items, mine_e).items
        served = ServedRecommendations(
            requests, np.repeat(np.arange(mine_e.shape[0]), rule_counts), returned)
        results = runner.run(version, start_us, end_us,
                             _subset(orders.indptr, orders.items, mine_o), served)
        if results is None:
            missing.append(version)
            continue
        rows += [_row(r, computed_us) for r in results]
    marker = DriftResult(MARKER, "", start_us, end_us, "marker", 0.0, None, False,
                         int(order_rows.shape[0]),
                         {"settings": runner.settings.key(), "missing_models": missing})
    return [*rows, _row(marker, computed_us)]


def _row(r: DriftResult, computed_us: int) -> dict[str, Any]:
    details = dict(r.details)
    details.setdefault("n", r.n)
    return {"model_version": r.model_version or None, "start_us": int(r.start_us),
            "end_us": int(r.end_us), "feature": r.detector, "statistic": r.statistic,
            "value": float(r.value), "threshold": None if r.threshold is None
            else float(r.threshold), "drifted": bool(r.drifted), "details": details,
            "computed_us": computed_us}


def _timed(store: MonitorStore, c: Any, runner: _Runner, window: Window, since_us: int,
           until_us: int, now_us: int, spans: list[aggregates.VersionSpan],
           reuse: bool) -> tuple[list[dict[str, Any]], int, int]:
    width = window.width_us
    started_us = round(time.time() * US) - RECEIPT_MARGIN_US  # as performance stamps its own
    first, end = window.start_of(since_us), window.start_of(until_us - 1) + width
    starts = list(range(first, end, width))
    kept: dict[int, list[dict[str, Any]]] = {}
    if reuse:
        receipts = aggregates.latest_receipts(c, first, end, width, window.origin_us)
        by_start: dict[int, list[dict[str, Any]]] = {}
        for row in aggregates.stored_drift(c, first, end, width):
            if row["feature"] != HIT_RATE:
                by_start.setdefault(row["start_us"], []).append(row)
        for start, rows in by_start.items():
            marker = next((r for r in rows if r["feature"] == MARKER), None)
            if (marker is not None
                    and marker["details"].get("settings") == runner.settings.key()
                    and marker["computed_us"] >= receipts.get(start, 0)
                    and not any(runner.models.has(v)
                                for v in marker["details"].get("missing_models", []))):
                kept[start] = rows
    fresh: dict[int, list[dict[str, Any]]] = {}
    computed_us = started_us
    for a, b in _runs([s for s in starts if s not in kept], width):
        orders = aggregates.order_items(c, a, b)
        events = aggregates.event_items(c, a, b)
        order_start = window.starts(orders.time_us)
        event_start = window.starts(events.time_us)
        for s in range(a, b, width):
            fresh[s] = _window_rows(runner, spans, s, s + width, orders,
                                    np.flatnonzero(order_start == s), events,
                                    np.flatnonzero(event_start == s), computed_us)
    closed = [s for s in fresh if s + width + GRACE_US <= now_us]
    if closed:
        with store._errors("storing drift results"), store.engine.begin() as w:
            aggregates.replace_drift(w, closed, width, [r for s in closed for r in fresh[s]],
                                     features=_stored_features())
    rows = [r for s in starts for r in kept.get(s, fresh.get(s, []))]
    return rows, len(kept), len(fresh)


def _stored_features() -> list[str]:
    from basketry.monitoring.drift_types import DETECTORS

    return [MARKER, *(d for d in DETECTORS if d != HIT_RATE)]


def _by_orders(c: Any, runner: _Runner, window: Window, since_us: int, until_us: int,
               spans: list[aggregates.VersionSpan]) -> tuple[list[dict[str, Any]], int, int]:
    orders = aggregates.order_items(c, since_us, until_us)
    if orders.n_orders > MAX_WINDOWS * window.n_orders:
        raise PerformanceError(f"{orders.n_orders:,} orders in windows of {window.n_orders:,} "
                               f"are more than {MAX_WINDOWS:,} windows", "window")
    events = aggregates.event_items(c, since_us, until_us)
    computed_us = round(time.time() * US)
    rows: list[dict[str, Any]] = []
    n = window.n_orders
    for lo in range(0, orders.n_orders, n):
        hi = min(lo + n, orders.n_orders)
        start, end = int(orders.time_us[lo]), int(orders.time_us[hi - 1]) + 1
        # the requests of the window: those answered between its first and last order
        in_window = np.flatnonzero((events.time_us >= start) & (events.time_us < end))
        rows += _window_rows(runner, spans, start, end, orders, np.arange(lo, hi), events,
                             in_window, computed_us)
    return rows, 0, len({r["start_us"] for r in rows})


def _hit_rate(store: MonitorStore, models: Models, window: Window, since_us: int,
              until_us: int, now_us: int, settings: DriftSettings) -> list[dict[str, Any]]:
    """The change detector over each version's online HR@10 per window (the replay's windows,
    reused from the store); the closed windows' verdicts are stored, replacing earlier ones."""
    from basketry.monitoring.drift_concept import hit_rate_changes

    report = performance(store, models, window=window, since=since_us / US,
                         until=until_us / US, now=now_us / US)
    series: dict[str, list[tuple[int, int, int, int]]] = {}
    for cell in report.cells:
        if cell.replay is not None and cell.model_version:
            series.setdefault(cell.model_version, []).append(
                (cell.start_us, cell.end_us, int(cell.replay["hits@10"]),
                 int(cell.replay["queries"])))
    computed_us = round(time.time() * US)
    rows: list[dict[str, Any]] = []
    for version, points in series.items():
        for r in hit_rate_changes(points, model_version=version):
            rows.append(_row(r, computed_us))
    if window.timed:
        closed = sorted({r["start_us"] for r in rows
                         if r["end_us"] + GRACE_US <= now_us})
        if closed:
            with store._errors("storing drift results"), store.engine.begin() as w:
                aggregates.replace_drift(w, closed, window.width_us,
                                         [r for r in rows if r["start_us"] in set(closed)],
                                         features=[HIT_RATE])
    return rows


def summary(report: DriftReport) -> Mapping[str, int]:
    """How many results, and how many drifted, per detector."""
    out: dict[str, int] = {}
    for r in report.results:
        out[r["feature"]] = out.get(r["feature"], 0) + int(r["drifted"])
    return out
