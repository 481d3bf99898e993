"""Alerts: a drift or performance condition stored, logged, exported and sent, once per episode.

A *condition* is a kind (a detector of ``drift_types.DETECTORS``, or ``performance``) about
one model version. :class:`AlertRules` say, declaratively, when one holds:

- a :class:`~basketry.monitoring.drift_types.DriftResult` of a watched detector with
  ``drifted`` (a window with fewer than ``min_n`` observations decides nothing);
- ``performance``: the online figure's upper 95% bound (``hit_rate@10`` of the replay) below
  the offline figure of the same version, in the latest closed window with at least
  ``min_queries`` queries (:func:`performance_figures` reads them from a performance report).

:meth:`Alerts.evaluate` opens an alert (a row of ``alerts``) for a condition that holds and has
none open, leaves an open one alone while it holds (no storm: one alert per episode), and
resolves it (``resolved_us``) when a later evaluation finds it clear. At most one alert per
condition is open, held by the store itself (a unique index over the open alerts'
``condition``): workers evaluating at once open one alert, and only the one that opened (or
resolved) it logs and sends it. Each opening and resolution is one log line
(``basketry.monitoring.alerts``) and, with a webhook, one POST (``basketry.monitoring.webhook``),
whose delivery is recorded on the row so :meth:`Alerts.resend` can send what a restart lost.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from basketry.monitoring import schema
from basketry.monitoring.alert_settings import KINDS, PERFORMANCE, AlertSettings
from basketry.monitoring.drift_types import DETECTORS, DriftResult
from basketry.monitoring.webhook import Webhook

if TYPE_CHECKING:
    from basketry.monitoring.performance import Report
    from basketry.monitoring.store import MonitorStore

log = logging.getLogger("basketry.monitoring.alerts")

US = 1_000_000
#: The longest message stored (one line).
MAX_MESSAGE = 400
#: Entries kept of each list in an alert's details (top contributors, broken rules...).
MAX_LISTED = 10
#: What each kind watches, in messages.
LABELS = {
    "items_orders": "item frequencies of orders",
    "items_requests": "item frequencies of recommendation requests",
    "basket_size": "basket sizes of orders",
    "unknown_share": "share of unknown items in orders",
    "new_top_items": "new items among the most bought",
    "rule_confidence": "confidence of the model's rules",
    "broken_rule_mass": "served recommendations whose rule no longer holds",
    "hit_rate_change": "online hit rate (change detector)",
    PERFORMANCE: "online performance against offline",
}


# -- what raises an alert ------------------------------------------------------------------

@dataclass(frozen=True)
class PerformanceFigure:
    """One version's online figure in one closed window, beside its offline figure."""

    model_version: str
    start_us: int
    end_us: int
    metric: str
    online: float
    ci_low: float
    ci_high: float
    offline: float | None
    queries: int


@dataclass(frozen=True)
class Condition:
    """Whether one condition holds, as seen in one window (``message`` and ``details``
    describe what was seen)."""

    kind: str
    model_version: str | None
    holds: bool
    severity: str
    message: str
    details: dict[str, Any]
    end_us: int

    @property
    def key(self) -> str:
        return condition_key(self.kind, self.model_version)


def condition_key(kind: str, model_version: str | None) -> str:
    """The ``alerts.condition`` of a kind about a version."""
    return f"{kind}|{model_version or ''}"


@dataclass(frozen=True)
class AlertRules:
    """Which results raise an alert, and how severe it is (see the module's docstring)."""

    detectors: frozenset[str] = frozenset(DETECTORS)
    drift_severity: str = "warning"
    #: A drift window with fewer observations than this decides nothing (an empty window
    #: neither raises nor clears an alert).
    min_n: int = 1
    performance_metric: str = "hit_rate@10"
    performance_severity: str = "critical"
    min_queries: int = 100
    #: Consecutive clear windows that resolve an open alert.
    clear_after: int = 1

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> AlertRules:
        return cls(detectors=settings.detector_set, drift_severity=settings.drift_severity,
                   performance_metric=settings.performance_metric,
                   performance_severity=settings.performance_severity,
                   min_queries=settings.min_queries, clear_after=settings.clear_after)

    def condition(self, result: DriftResult | PerformanceFigure) -> Condition | None:
        """The condition ``result`` decides, or None when it decides none."""
        if isinstance(result, PerformanceFigure):
            return self._performance(result)
        if result.detector not in self.detectors or result.n < self.min_n:
            return None
        return Condition(result.detector, result.model_version, bool(result.drifted),
                         self.drift_severity, _drift_message(result), _drift_details(result),
                         result.end_us)

    def conditions(self, results: Iterable[DriftResult | PerformanceFigure]) -> list[Condition]:
        """One condition per key, as its latest window (by end) sees it, in key order."""
        latest: dict[str, Condition] = {}
        for result in results:
            c = self.condition(result)
            if c is not None and (c.key not in latest or c.end_us >= latest[c.key].end_us):
                latest[c.key] = c
        return [latest[k] for k in sorted(latest)]

    def _performance(self, f: PerformanceFigure) -> Condition | None:
        if f.metric != self.performance_metric or f.offline is None:
            return None
        if f.queries < max(self.min_queries, 1):
            return None
        holds = f.ci_high < f.offline
        message = (f"{f.metric} online {f.online:.3f} (95% interval {f.ci_low:.3f} to "
                   f"{f.ci_high:.3f}, {f.queries:,} queries) "
                   f"{'below' if holds else 'not below'} the offline {f.offline:.3f} for model "
                   f"{f.model_version} in the window {_window(f.start_us, f.end_us)}")
        details = _jsonable({"metric": f.metric, "online": f.online,
                             "ci95": [f.ci_low, f.ci_high], "offline": f.offline,
                             "queries": f.queries,
                             "window": {"start": _iso(f.start_us), "end": _iso(f.end_us)}})
        return Condition(PERFORMANCE, f.model_version, holds, self.performance_severity,
                         message, details, f.end_us)


def performance_figures(report: Report, metric: str = "hit_rate@10") -> list[PerformanceFigure]:
    """Per model version, the latest closed window of ``report`` with a replay figure of
    ``metric``, beside the version's offline figure (None when the version has none)."""
    from basketry.monitoring.performance import cell_json

    latest: dict[str, PerformanceFigure] = {}
    for cell in report.cells:
        shown = cell_json(cell, report.params.ks, report.now_us)
        replay = shown["replay"]
        if not shown["closed"] or not cell.model_version or replay is None:
            continue
        figure = replay.get(metric)
        if figure is None or figure["value"] is None or figure["ci95"] is None:
            continue
        offline = (report.versions.get(cell.model_version, {}).get("offline") or {}).get(metric)
        f = PerformanceFigure(cell.model_version, cell.start_us, cell.end_us, metric,
                              float(figure["value"]), float(figure["ci95"][0]),
                              float(figure["ci95"][1]),
                              None if offline is None else float(offline),
                              int(replay["queries"]))
        if f.model_version not in latest or f.end_us > latest[f.model_version].end_us:
            latest[f.model_version] = f
    return [latest[v] for v in sorted(latest)]


# -- what is stored and sent -----------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """One row of ``alerts``."""

    id: int
    time_us: int
    kind: str
    severity: str
    model_version: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    resolved_us: int | None = None
    notified_us: int | None = None
    resolved_notified_us: int | None = None

    @property
    def open(self) -> bool:
        return self.resolved_us is None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "severity": self.severity,
                "model_version": self.model_version, "message": self.message,
                "opened_at": _iso(self.time_us),
                "resolved_at": None if self.resolved_us is None else _iso(self.resolved_us),
                "details": self.details}

    def payload(self, event: str) -> dict[str, Any]:
        """The webhook's JSON for ``event`` (``opened`` or ``resolved``): ``id`` is the same
        for a resent delivery, so a receiver can drop duplicates."""
        verb = "opened" if event == "opened" else "resolved"
        return {"id": f"basketry-alert-{self.id}-{event}", "event": event,
                "text": f"[{self.severity}] basketry alert {self.id} {verb}: {self.message}",
                "alert": self.to_json(), "source": "basketry"}


@dataclass(frozen=True)
class Figure:
    """One Prometheus sample (``kind``: ``gauge`` or ``counter``; a counter's ``name`` ends
    in ``_total``, as exported)."""

    name: str
    kind: str
    help: str
    labels: dict[str, str]
    value: float


class Alerts:
    """The alerts of one store (see the module's docstring)."""

    def __init__(self, store: MonitorStore, rules: AlertRules | None = None,
                 webhook: Webhook | None = None, *, resend_hours: float = 24.0) -> None:
        self.store = store
        self.rules = rules or AlertRules()
        self.webhook = webhook
        self.resend_hours = resend_hours
        if webhook is not None and webhook.on_result is None:
            webhook.on_result = self._delivered

    @classmethod
    def from_settings(cls, store: MonitorStore, settings: AlertSettings | None = None) -> Alerts:
        """Alerts with the rules and the webhook of ``settings`` (default: the environment)."""
        settings = settings or AlertSettings.from_env()
        return cls(store, AlertRules.from_settings(settings), Webhook.from_settings(settings),
                   resend_hours=settings.resend_hours)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what the webhook holds within ``timeout`` seconds, then stop it."""
        if self.webhook is not None:
            self.webhook.close(timeout)

    # -- evaluating ------------------------------------------------------------------------

    def evaluate(self, results: Iterable[DriftResult | PerformanceFigure],
                 now_us: int | None = None) -> list[Alert]:
        """Open and resolve alerts by ``results`` (the latest window of each condition
        decides; conditions absent from ``results`` are left as they are). Returns the alerts
        this call opened (``open``) or resolved, in condition order."""
        now_us = _now_us() if now_us is None else now_us
        conditions = self.rules.conditions(results)
        if not conditions:
            return []
        t = schema.alerts
        changed: list[tuple[Alert, str]] = []
        try:
            with self.store._errors("evaluating alerts"):
                with self.store.engine.connect() as c:
                    open_now = c.execute(sa.select(t.c.condition, t.c.clear_count)
                                         .where(t.c.resolved_us.is_(None))).all()
                already = {key: n for key, n in open_now}
                for cond in conditions:
                    if cond.holds and cond.key not in already:
                        alert = self._open(cond, now_us)
                        if alert is not None:
                            changed.append((alert, "opened"))
                    elif cond.holds and already[cond.key]:
                        self._hold(cond.key)
                    elif not cond.holds and cond.key in already and self._cleared(cond):
                        changed += [(a, "resolved") for a in self._resolve(
                            t.c.condition == cond.key, now_us, _clearing(cond))]
        finally:  # what was committed before a store failure is still logged and sent
            for alert, event in changed:
                self._announce(alert, event)
        return [alert for alert, _ in changed]

    def resolve(self, alert_id: int, now_us: int | None = None,
                reason: str = "resolved by hand") -> Alert | None:
        """Resolve the open alert ``alert_id`` (None: no such open alert)."""
        now_us = _now_us() if now_us is None else now_us
        with self.store._errors("resolving an alert"):
            done = self._resolve(schema.alerts.c.id == alert_id, now_us, {"reason": reason})
        for alert in done:
            self._announce(alert, "resolved")
        return done[0] if done else None

    def retire_versions(self, serving: Iterable[str], now_us: int | None = None) -> list[Alert]:
        """Resolve the open alerts about model versions not in ``serving`` (a version no
        longer served cannot clear its conditions)."""
        now_us = _now_us() if now_us is None else now_us
        t = schema.alerts
        keep = sorted(set(serving))
        with self.store._errors("resolving alerts"):
            done = self._resolve(t.c.model_version.is_not(None)
                                 & t.c.model_version.not_in(keep), now_us,
                                 {"reason": "the model version is no longer served"})
        for alert in done:
            self._announce(alert, "resolved")
        return done

    def _open(self, cond: Condition, now_us: int) -> Alert | None:
        t = schema.alerts
        row = {"time_us": now_us, "kind": cond.kind, "severity": cond.severity,
               "model_version": cond.model_version, "message": _one_line(cond.message),
               "details": cond.details, "condition": cond.key}
        dialect = self.store.engine.dialect.name
        with self.store.engine.begin() as c:
            if dialect in ("postgresql", "sqlite"):
                # another process's open alert of this condition wins: nothing inserted
                insert = postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)
                got = c.execute(insert.values(row).on_conflict_do_nothing()
                                .returning(*t.c)).first()
                return None if got is None else _alert(got)
        try:  # another backend: the unique index refuses the second open alert
            with self.store.engine.begin() as c:
                got = c.execute(t.insert().values(row).returning(*t.c)).first()
        except sa.exc.IntegrityError:
            return None
        return None if got is None else _alert(got)

    def _cleared(self, cond: Condition) -> bool:
        """Count one more clear window of an open alert (once per window, whichever worker
        sees it); whether it has been clear for ``clear_after`` windows in a row."""
        if self.rules.clear_after <= 1:
            return True
        t = schema.alerts
        open_ = (t.c.condition == cond.key) & t.c.resolved_us.is_(None)
        with self.store.engine.begin() as c:
            counted = c.execute(
                t.update().where(open_ & (t.c.last_clear_end_us.is_(None)
                                          | (t.c.last_clear_end_us < cond.end_us)))
                .values(clear_count=t.c.clear_count + 1, last_clear_end_us=cond.end_us)
                .returning(t.c.clear_count)).scalar()
        return counted is not None and counted >= self.rules.clear_after

    def _hold(self, key: str) -> None:
        """The condition holds again: the clear windows counted so far no longer count."""
        t = schema.alerts
        with self.store.engine.begin() as c:
            c.execute(t.update().where((t.c.condition == key) & t.c.resolved_us.is_(None)
                                       & (t.c.clear_count > 0))
                      .values(clear_count=0, last_clear_end_us=None))

    def _resolve(self, where: Any, now_us: int, resolution: dict[str, Any]) -> list[Alert]:
        t = schema.alerts
        with self.store.engine.begin() as c:
            # one statement: of workers resolving at once, one gets each row
            rows = c.execute(t.update().where(where & t.c.resolved_us.is_(None))
                             .values(resolved_us=now_us).returning(*t.c)).all()
            done = []
            for row in rows:
                details = {**(row.details or {}), "resolution": resolution}
                c.execute(t.update().where(t.c.id == row.id).values(details=details))
                done.append(_alert(row, details=details))
        return sorted(done, key=lambda a: a.id)

    def _announce(self, alert: Alert, event: str) -> None:
        if event == "opened":
            level = logging.ERROR if alert.severity == "critical" else logging.WARNING
            log.log(level, "alert %d opened (%s, %s): %s", alert.id, alert.severity,
                    alert.kind, alert.message)
        else:
            reason = (alert.details.get("resolution") or {}).get("reason", "")
            log.info("alert %d resolved (%s, model %s): %s", alert.id, alert.kind,
                     alert.model_version or "-", reason)
        if self.webhook is not None:
            self.webhook.send(alert.payload(event), key=(alert.id, event),
                              what=f"alert {alert.id} ({event})")

    # -- delivery --------------------------------------------------------------------------

    def _delivered(self, key: Any, delivered: bool) -> None:
        if not delivered:
            return  # left NULL: resend() sends it again
        alert_id, event = key
        t = schema.alerts
        column = "notified_us" if event == "opened" else "resolved_notified_us"
        with self.store._errors("recording an alert's delivery"), self.store.engine.begin() as c:
            c.execute(t.update().where(t.c.id == alert_id).values({column: _now_us()}))

    def resend(self, now_us: int | None = None) -> int:
        """Queue again the openings and resolutions of the last ``resend_hours`` the webhook
        has not delivered (a restart, a full queue, a receiver down); how many were queued.
        Meant for the one process that evaluates (several would send duplicates, which the
        payload's ``id`` lets a receiver drop)."""
        if self.webhook is None:
            return 0
        now_us = _now_us() if now_us is None else now_us
        cutoff = now_us - round(self.resend_hours * 3600 * US)
        t = schema.alerts
        with self.store._errors("reading undelivered alerts"), self.store.engine.connect() as c:
            rows = c.execute(sa.select(t).where(
                (t.c.notified_us.is_(None) & (t.c.time_us >= cutoff))
                | (t.c.resolved_us.is_not(None) & t.c.resolved_notified_us.is_(None)
                   & (t.c.resolved_us >= cutoff))).order_by(t.c.id)).all()
        queued = 0
        for row in rows:
            alert = _alert(row)
            events = (["opened"] if row.notified_us is None and row.time_us >= cutoff else [])
            if row.resolved_us is not None and row.resolved_notified_us is None:
                events.append("resolved")
            for event in events:
                queued += self.webhook.send(alert.payload(event), key=(alert.id, event),
                                            what=f"alert {alert.id} ({event}, resent)")
        return queued

    # -- reading ---------------------------------------------------------------------------

    def open_alerts(self) -> list[Alert]:
        """The alerts open now, oldest first."""
        t = schema.alerts
        with self.store._errors("reading alerts"), self.store.engine.connect() as c:
            rows = c.execute(sa.select(t).where(t.c.resolved_us.is_(None))
                             .order_by(t.c.time_us, t.c.id)).all()
        return [_alert(r) for r in rows]

    def history(self, since_us: int | None = None, limit: int = 1_000) -> list[Alert]:
        """Alerts opened since ``since_us``, or still open however old, newest first (at most
        ``limit``)."""
        t = schema.alerts
        query = sa.select(t).order_by(t.c.time_us.desc(), t.c.id.desc()).limit(limit)
        if since_us is not None:
            query = query.where((t.c.time_us >= since_us) | t.c.resolved_us.is_(None))
        with self.store._errors("reading alerts"), self.store.engine.connect() as c:
            rows = c.execute(query).all()
        return [_alert(r) for r in rows]

    def metrics(self) -> list[Figure]:
        """The figures to export to Prometheus: :meth:`store_figures` then
        :func:`webhook_figures` (a store failure raises ``MonitorStoreError``: export
        :func:`webhook_figures` alone then)."""
        return self.store_figures() + webhook_figures(self.webhook)

    def store_figures(self) -> list[Figure]:
        """Open alerts and alerts raised, per kind: the store's, every process's (one query;
        call it after an evaluation rather than at every scrape)."""
        t = schema.alerts
        with self.store._errors("counting alerts"), self.store.engine.connect() as c:
            rows = c.execute(sa.select(
                t.c.kind, sa.func.count(),
                sa.func.sum(sa.case((t.c.resolved_us.is_(None), 1), else_=0)))
                .group_by(t.c.kind)).all()
        raised = {kind: (int(n), int(n_open or 0)) for kind, n, n_open in rows}
        out = []
        for kind in sorted(set(KINDS) | set(raised)):
            n, n_open = raised.get(kind, (0, 0))
            out.append(Figure("basketry_monitor_alerts_open", "gauge",
                              "Alerts open now, by kind.", {"kind": kind}, n_open))
            out.append(Figure("basketry_monitor_alerts_raised_total", "counter",
                              "Alerts opened since the store began, by kind.", {"kind": kind}, n))
        return out


def webhook_figures(webhook: Webhook | None) -> list[Figure]:
    """This process's webhook deliveries by outcome, retries and queue depth (zeros without
    a webhook)."""
    counts = webhook.counts() if webhook is not None else {}
    out = [Figure("basketry_monitor_webhook_deliveries_total", "counter",
                  "Alert webhook deliveries by outcome (delivered; failed: given up after the "
                  "retries; dropped: the queue was full).", {"outcome": outcome},
                  counts.get(outcome, 0)) for outcome in ("delivered", "failed", "dropped")]
    out.append(Figure("basketry_monitor_webhook_retries_total", "counter",
                      "Alert webhook attempts made after a failed one.", {},
                      counts.get("retries", 0)))
    out.append(Figure("basketry_monitor_webhook_queue_depth", "gauge",
                      "Alert webhook deliveries waiting.", {}, counts.get("queue_depth", 0)))
    return out


# -- helpers ---------------------------------------------------------------------------------

def _alert(row: Any, details: dict[str, Any] | None = None) -> Alert:
    return Alert(id=int(row.id), time_us=int(row.time_us), kind=row.kind, severity=row.severity,
                 model_version=row.model_version, message=row.message,
                 details=details if details is not None else (row.details or {}),
                 resolved_us=row.resolved_us, notified_us=row.notified_us,
                 resolved_notified_us=row.resolved_notified_us)


def _drift_message(r: DriftResult) -> str:
    label = LABELS.get(r.detector, r.detector)
    # a falling figure (the hit rate) drifts below its threshold, the others above theirs
    side = "below" if r.value < (r.threshold if r.threshold is not None else r.value) \
        else "above"
    threshold = "" if r.threshold is None else (
        f" {side if r.drifted else 'within'} the threshold {r.threshold:.4g}")
    drivers = _drivers(r.details)
    state = "drifted" if r.drifted else "back in range"
    return (f"{label} {state} for model {r.model_version} ({r.detector}): {r.statistic} "
            f"{r.value:.4g}{threshold} in the window {_window(r.start_us, r.end_us)} "
            f"(n={r.n:,})"
            + (f"; driven by {drivers}" if drivers and r.drifted else ""))


def _drivers(details: Mapping[str, Any]) -> str:
    """The first three items driving a drift (their labels when known)."""
    top = details.get("top_contributors") or details.get("entrants") or []
    names = []
    for entry in top[:3] if isinstance(top, Sequence) else []:
        if isinstance(entry, Mapping):
            name = entry.get("label") or entry.get("item")
            if name:
                names.append(str(name))
        elif isinstance(entry, str):
            names.append(entry)
    broken = details.get("broken_rules")
    if not names and isinstance(broken, Sequence) and broken:
        return f"{len(broken)} rule{'s' * (len(broken) != 1)} listed in the details"
    return ", ".join(names)


def _drift_details(r: DriftResult) -> dict[str, Any]:
    out = {k: v for k, v in r.to_json().items() if k != "details"}
    out["window"] = {"start": _iso(r.start_us), "end": _iso(r.end_us)}
    out["drift"] = {k: (v[:MAX_LISTED] if isinstance(v, list) else v)
                    for k, v in (r.details or {}).items()}
    return _jsonable(out)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays as numbers and lists, NaN and
    infinities as null (PostgreSQL's JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # a numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _clearing(cond: Condition) -> dict[str, Any]:
    return {"reason": "the condition cleared", "message": _one_line(cond.message),
            "window": cond.details.get("window")}


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…"


def _window(start_us: int, end_us: int) -> str:
    return f"{_iso(start_us)} to {_iso(end_us)}"


def _iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us // US, UTC).isoformat().replace("+00:00", "Z")


def _now_us() -> int:
    return round(time.time() * US)
