"""What the monitoring page and the static report show, as one JSON document.

``dashboard_data`` gathers, for one period and window: the traffic and latency per window
(``traffic``: aggregated in SQL, closed windows stored once), the online performance per model
version (``performance``: HR@k replayed on the completed orders, the version's offline figure
beside it), the drift detectors' results stored by ``basketry monitor drift`` (a series per
detector and version, the top drifting items and the broken rules of the latest window) and
the alerts (open ones first, then the period's resolved ones). ``report_html`` draws it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from basketry.monitoring import schema, traffic
from basketry.monitoring.drift_types import DETECTORS
from basketry.monitoring.performance import performance
from basketry.monitoring.windows import US, Window
from basketry.monitoring.windows import iso as _iso

if TYPE_CHECKING:
    from basketry.monitoring.catalog import Models
    from basketry.monitoring.store import MonitorStore

#: Detectors of the data (what customers buy and ask about) and of the concept (whether the
#: model's rules and answers still hold); anything else a later detector writes goes last.
DATA_DETECTORS = ("items_orders", "items_requests", "basket_size", "unknown_share",
                  "new_top_items")
CONCEPT_DETECTORS = ("rule_confidence", "broken_rule_mass", "hit_rate_change")
#: At most this many open alerts, and resolved ones, on a page.
MAX_ALERTS = 100
#: At most this many rows in the tables of drifting items and broken rules.
MAX_ROWS = 25
#: The cut-off of the hit rate the page charts.
HR_K = 10
DATA_VERSION = 1


def dashboard_data(store: MonitorStore, models: Models, *, window: Window,
                   since: float | None = None, until: float | None = None,
                   now: float | None = None) -> dict[str, Any]:
    """The page's document for ``window`` between ``since`` and ``until`` (seconds since the
    epoch; default: the window's usual span up to now). Raises ``PerformanceError`` for a
    period that cannot be reported, ``MonitorStoreError`` when the store fails."""
    now_s = time.time() if now is None else now
    now_us = round(now_s * US)
    report = performance(store, models, window=window, since=since, until=until, now=now_s)
    since_us, until_us = report.since_us, report.until_us
    # windows of N orders have no time width: their traffic is shown per day
    timed = window if window.timed else Window.parse("day")
    windows, reused, computed = traffic.traffic_windows(store, timed, since_us, until_us,
                                                        now_us)
    with store._errors("reading drift results and alerts"), store.engine.connect() as c:
        results = _drift_rows(c, since_us, until_us)
        alerts = _alerts(c, since_us)
    perf = report.to_json()
    traffic_doc = traffic.traffic_json(windows, timed, now_us, reused, computed)
    return {
        "version": DATA_VERSION,
        "generated": _iso(now_us),
        "window": window.label,
        "since": _iso(since_us),
        "until": _iso(until_us),
        "hr_k": HR_K,
        "traffic": traffic_doc,
        "performance": perf,
        "drift": _drift(results),
        "alerts": alerts,
        "summary": _summary(traffic_doc["total"], perf, results, alerts),
    }


# -- drift -----------------------------------------------------------------------------------

def _drift_rows(c: sa.Connection, since_us: int, until_us: int) -> list[dict[str, Any]]:
    """The period's drift results, the latest computation of each (detector, version,
    window) only, oldest window first."""
    t = schema.drift_results
    rows = c.execute(
        sa.select(t.c.feature, t.c.model_version, t.c.start_us, t.c.end_us, t.c.statistic,
                  t.c.value, t.c.threshold, t.c.drifted, t.c.details, t.c.computed_us)
        .where(t.c.start_us < until_us, t.c.end_us > since_us)
        .order_by(t.c.start_us, t.c.computed_us, t.c.id))
    latest: dict[tuple[str, str, int, int], dict[str, Any]] = {}
    for feature, version, start, end, statistic, value, threshold, drifted, details, _ in rows:
        if feature not in DETECTORS:  # the orchestrator's marker rows (a stored window's
            continue                  # settings), or a detector this version does not know
        details = traffic.loads(details) or {}
        latest[(feature, version or "", int(start), int(end))] = {
            "detector": str(feature), "model_version": version, "start_us": int(start),
            "end_us": int(end), "statistic": str(statistic), "value": _finite(value),
            "threshold": _finite(threshold),
            "drifted": bool(drifted), "n": details.get("n") if isinstance(details, Mapping)
            else None, "details": details}
    return sorted(latest.values(), key=lambda r: (r["start_us"], r["detector"]))


def _drift(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    known = [d for d in (*DATA_DETECTORS, *CONCEPT_DETECTORS) if d in DETECTORS]
    order = {d: i for i, d in enumerate(known)}
    detectors: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: (order.get(r["detector"], len(order)),
                                            r["detector"])):
        d = detectors.setdefault(r["detector"], {
            "kind": "concept" if r["detector"] in CONCEPT_DETECTORS else "data",
            "statistic": r["statistic"], "series": {}})
        d["series"].setdefault(r["model_version"] or "", []).append({
            "start": _iso(r["start_us"]), "end": _iso(r["end_us"]), "value": r["value"],
            "threshold": r["threshold"], "drifted": r["drifted"], "n": r["n"]})
    for d in detectors.values():
        for series in d["series"].values():
            series.sort(key=lambda p: p["start"])
    return {"detectors": detectors,
            "top_items": _latest_details(results, "top_contributors",
                                         ("items_orders", "items_requests")),
            "broken_rules": _latest_details(results, "broken_rules", ("rule_confidence",))}


def _latest_details(results: Sequence[dict[str, Any]], key: str,
                    detectors: Sequence[str]) -> list[dict[str, Any]]:
    """Per detector of ``detectors`` (in that order) and version, the rows of ``details[key]``
    in its latest window: what drives the drift now."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:  # oldest window first: the last one seen is the latest
        if r["detector"] not in detectors:  # another detector's list of another shape
            continue
        rows = r["details"].get(key) if isinstance(r["details"], Mapping) else None
        if isinstance(rows, list):
            latest[(r["detector"], r["model_version"] or "")] = r
    rank = {d: i for i, d in enumerate(detectors)}
    out = []
    for (detector, version), r in sorted(latest.items(),
                                         key=lambda kv: (rank.get(kv[0][0], len(rank)), kv[0])):
        rows = r["details"][key]
        out.append({"detector": detector, "model_version": version or None,
                    "start": _iso(r["start_us"]), "end": _iso(r["end_us"]),
                    "drifted": r["drifted"], "total": len(rows),
                    "rows": [dict(x) for x in rows[:MAX_ROWS] if isinstance(x, Mapping)]})
    return out


# -- alerts ----------------------------------------------------------------------------------

def _alerts(c: sa.Connection, since_us: int) -> dict[str, Any]:
    """Open alerts (any age), newest first; then those resolved that were raised in the
    period."""
    t = schema.alerts
    columns = (t.c.id, t.c.time_us, t.c.kind, t.c.severity, t.c.model_version, t.c.message,
               t.c.details, t.c.resolved_us)
    opened = c.execute(sa.select(*columns).where(t.c.resolved_us.is_(None))
                       .order_by(t.c.time_us.desc(), t.c.id.desc()).limit(MAX_ALERTS + 1)).all()
    resolved = c.execute(sa.select(*columns)
                         .where(t.c.resolved_us.is_not(None), t.c.time_us >= since_us)
                         .order_by(t.c.time_us.desc(), t.c.id.desc()).limit(MAX_ALERTS)).all()
    n_open = len(opened) if len(opened) <= MAX_ALERTS else c.execute(
        sa.select(sa.func.count()).select_from(t).where(t.c.resolved_us.is_(None))).scalar()
    return {"open_count": int(n_open or 0),
            "open": [_alert(r) for r in opened[:MAX_ALERTS]],
            "resolved": [_alert(r) for r in resolved]}


def _alert(row: Any) -> dict[str, Any]:
    id_, time_us, kind, severity, version, message, details, resolved_us = row
    return {"id": int(id_), "time": _iso(int(time_us)), "kind": str(kind),
            "severity": str(severity), "model_version": version, "message": str(message),
            "details": traffic.loads(details),
            "resolved": None if resolved_us is None else _iso(int(resolved_us))}


# -- the figures at the top of the page ------------------------------------------------------

def _summary(total: Mapping[str, Any], perf: Mapping[str, Any],
             results: Sequence[dict[str, Any]], alerts: Mapping[str, Any]) -> dict[str, Any]:
    hr = None
    for w in reversed(perf["windows"]):  # the latest window with a replayed hit rate
        value = ((w.get("replay") or {}).get(f"hit_rate@{HR_K}") or {}).get("value")
        if value is not None:
            hr = {"model_version": w["model_version"], "start": w["start"], "value": value}
            break
    last_start = max((r["start_us"] for r in results), default=None)
    latest = [r for r in results if r["start_us"] == last_start]
    return {"requests": total["requests"], "latency_p95_ms": total["latency_ms"]["p95"],
            "hit_rate": hr, "open_alerts": alerts["open_count"],
            "drift_window": None if last_start is None else _iso(last_start),
            "drifted": sorted({r["detector"] for r in latest if r["drifted"]}),
            "detectors_checked": len({r["detector"] for r in latest})}


def _finite(value: Any) -> float | None:
    """A stored figure, or ``None`` for a missing one or a NaN (not JSON)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)
