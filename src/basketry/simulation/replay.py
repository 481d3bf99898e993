"""The whole loop replayed on a real timeline: a transaction history month by month through
the real server, monitored, and retrained by a policy.

For each policy (``never``, ``monthly``, ``alert``) in a home of its own (its registry, its
monitoring store, its models):

1. a model is trained on the first months and registered (the champion);
2. ``basketry serve --model models:/basketry@champion`` runs with capture on;
3. each next month, every order of two items or more asks the server for recommendations
   (its basket less one item drawn at random, ``k`` 10, the order's id as request id), then
   the month's orders are posted to ``POST /v1/orders`` naming those requests;
4. the server records each event at the wall clock's time: the replay stamps each one with
   its order's time less a minute, so the monitoring sees the history's timeline (which
   version served when);
5. at the month's end the monitoring runs as ``basketry monitor watch`` would then (the
   online performance, drift, alerts, with the month's end as "now"), and the policy decides:
   ``monthly`` retrains, ``alert`` retrains when alerts opened, ``never`` does not. A retrain is
   :func:`basketry.training.retrain.retrain` on the data up to the month's end, gated against
   the champion on the same last days; the server follows the champion alias.

The online HR@10 of a month is the monitoring's replay of the month's orders with the version
that served them (the hide-one protocol, the same measure as offline).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from basketry.data import Baskets, read_baskets
from basketry.training import history

POLICIES = ("never", "monthly", "alert")
NS = 1_000_000_000
US = 1_000_000
#: An event is stamped this long before its order (shown while the basket filled).
SHOWN_BEFORE_US = 60 * US
#: Orders per POST /v1/orders (the service's default limit).
ORDERS_PER_POST = 100
#: Items asked about at most (the service's default basket limit).
MAX_ASKED = 100


class SimulationError(Exception):
    """The replay cannot run: one line."""


@dataclass(frozen=True)
class Setup:
    data: Path
    read_options: Mapping[str, Any]
    out: Path
    mining: Mapping[str, Any]
    initial_months: int = 3
    policies: Sequence[str] = POLICIES
    test_days: float = 14.0
    retrain_days: float | None = None
    min_baskets: int = 500
    k: int = 10
    seed: int = 0
    port: int = 0
    #: the alerts the ``alert`` policy retrains on: ``any``, ``critical`` (the online
    #: performance below the offline figure), or a comma-separated list of alert kinds
    retrain_on: str = "any"
    #: the alert policy retrains every month for its first N replayed months (a minimum
    #: cadence while the training window is short), then on alerts
    monthly_first: int = 0


@dataclass
class Month:
    label: str
    orders: int
    queries: int = 0
    hits: int = 0
    versions: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    critical: list[str] = field(default_factory=list)
    retrained: bool = False
    promoted: bool = False
    retrain_note: str = ""
    #: the month's highest drift score: a detector's statistic over its alarm threshold
    #: (above 1 it alarms), and which detector gave it
    drift_score: float | None = None
    drift_detector: str = ""

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.queries if self.queries else None


@dataclass
class PolicyRun:
    policy: str
    months: list[Month] = field(default_factory=list)

    @property
    def retrains(self) -> int:
        return sum(m.retrained for m in self.months)

    @property
    def promotions(self) -> int:
        return sum(m.promoted for m in self.months)

    @property
    def mean_hit_rate(self) -> float | None:
        rates = [m.hit_rate for m in self.months if m.hit_rate is not None]
        return sum(rates) / len(rates) if rates else None

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "retrains": self.retrains,
                "promotions": self.promotions, "mean_hit_rate@10": self.mean_hit_rate,
                "months": [{**m.__dict__, "hit_rate@10": m.hit_rate} for m in self.months]}


def month_starts(baskets: Baskets) -> list[np.datetime64]:
    """The first instant of every calendar month the history touches, and the one after."""
    if baskets.timestamps is None:
        raise SimulationError(f"{baskets.source}: no timestamps: a replay needs the orders' "
                              "times (a long table with a time column, or a preset)")
    if baskets.basket_ids is None:
        raise SimulationError(f"{baskets.source}: no transaction ids: a replay posts each "
                              "order by its id (a long table with a transaction column)")
    first = baskets.timestamps.min().astype("datetime64[M]")
    last = baskets.timestamps.max().astype("datetime64[M]")
    return [m.astype("datetime64[ns]")
            for m in np.arange(first, last + np.timedelta64(2, "M"), dtype="datetime64[M]")]


def replay(setup: Setup, say: Callable[[str], None] = print) -> list[PolicyRun]:
    """Run every policy of ``setup`` (see the module's docstring); results are also written
    to ``setup.out`` (``replay.json``)."""
    if setup.retrain_on not in ("any", "critical"):
        from basketry.monitoring.drift_types import DETECTORS

        kinds = {k.strip() for k in setup.retrain_on.split(",") if k.strip()}
        known = {*DETECTORS, "performance"}
        if not kinds or kinds - known:
            raise SimulationError(f"retrain on {setup.retrain_on!r}: any, critical, or alert "
                                  f"kinds among {', '.join(sorted(known))}")
    unknown = set(setup.policies) - set(POLICIES)
    if unknown:
        raise SimulationError(f"unknown policies {sorted(unknown)}: choose among "
                              f"{', '.join(POLICIES)}")
    baskets = read_baskets(setup.data, **{k: v for k, v in setup.read_options.items()
                                          if v is not None})
    starts = month_starts(baskets)
    if len(starts) < setup.initial_months + 2:
        raise SimulationError(f"{setup.data}: {len(starts) - 1} months of history, too few "
                              f"for {setup.initial_months} initial months and one replayed")
    setup.out.mkdir(parents=True, exist_ok=True)
    runs = []
    with _quiet("basketry.monitoring", "mlflow", "alembic"):
        for policy in setup.policies:
            say(f"policy {policy}:")
            runs.append(_run_policy(setup, policy, baskets, starts, say))
        (setup.out / "replay.json").write_text(json.dumps(
            {"data": str(setup.data), "initial_months": setup.initial_months,
             "retrain_on": setup.retrain_on, "monthly_first": setup.monthly_first,
             "policies": [r.to_json() for r in runs]}, indent=1, default=str) + "\n")
    return runs


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The libraries' own log lines (each alert, MLflow's table creation) held back: the
    replay says per month what opened; the alerts are in each policy's store."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _home(path: Path) -> Iterator[None]:
    """This process's basketry home (registry, monitoring store) for one policy."""
    saved = {k: os.environ.get(k) for k in ("BASKETRY_HOME", "MLFLOW_TRACKING_URI",
                                            "BASKETRY_MONITOR_DB")}
    os.environ["BASKETRY_HOME"] = str(path)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["BASKETRY_MONITOR_DB"] = f"sqlite:///{path / 'monitoring.db'}"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_policy(setup: Setup, policy: str, baskets: Baskets, starts: list[np.datetime64],
                say: Callable[[str], None]) -> PolicyRun:
    from basketry.training.workflow import train_workflow

    home = setup.out / policy
    if home.exists():
        raise SimulationError(f"{home} exists: give an empty --out")
    run = PolicyRun(policy)
    with _home(home):
        first_end = starts[setup.initial_months]
        initial = history.cut(baskets, history.Window(None, first_end - np.timedelta64(1, "ns")))
        say(f"  training on the first {setup.initial_months} months "
            f"({initial.n_baskets:,} baskets)")
        train_workflow(initial, home / "models" / "initial", mining=dict(setup.mining),
                       test_days=setup.test_days, seed=setup.seed, track=True, register=True)
        with _server(home, setup.port) as server:
            for m in range(setup.initial_months, len(starts) - 1):
                early = m - setup.initial_months < setup.monthly_first
                run.months.append(_month(setup, policy, baskets, starts[m], starts[m + 1],
                                         server, home, say, early=early))
    return run


def _month(setup: Setup, policy: str, baskets: Baskets, start: np.datetime64,
           end: np.datetime64, server: _Server, home: Path,
           say: Callable[[str], None], *, early: bool = False) -> Month:
    from basketry.monitoring.alerts import Alerts
    from basketry.monitoring.catalog import ModelCatalog, model_directories, registry_roots
    from basketry.monitoring.performance import performance
    from basketry.monitoring.store import MonitorStore
    from basketry.monitoring.watch import run_cycle
    from basketry.monitoring.windows import Window

    label = str(start.astype("datetime64[M]"))
    stamps = baskets.timestamps
    assert stamps is not None and baskets.basket_ids is not None
    rows = np.flatnonzero((stamps >= start) & (stamps < end))
    rows = rows[np.argsort(stamps[rows], kind="stable")]
    month = Month(label, orders=int(rows.shape[0]))
    rng = random.Random(f"{setup.seed}-{label}")
    orders, rids = [], []
    for b in rows.tolist():
        items = baskets.basket(b)
        oid = str(baskets.basket_ids[b])
        rid = f"sim-{oid}"[:64]
        hidden = rng.choice(items)
        # the cart less one item (at most MAX_ASKED of them: the service's basket limit)
        ask = [i for i in items if i != hidden][:MAX_ASKED] if len(items) >= 2 else []
        if ask:
            server.recommend(ask, setup.k, rid)
            rids.append(rid)
        orders.append({"order_id": oid, "time": _iso(stamps[b]), "items": items,
                       "request_ids": [rid] if ask else []})
    for i in range(0, len(orders), ORDERS_PER_POST):
        server.post_orders(orders[i:i + ORDERS_PER_POST])
    store = MonitorStore(f"sqlite:///{home / 'monitoring.db'}")
    try:
        _wait_written(store, rids)
        _restamp(store, rids)
        now = float(end.astype(np.int64)) / NS
        catalog = ModelCatalog(model_directories(registry_roots()))
        report = performance(store, catalog, window=Window.parse("day"),
                             since=float(start.astype(np.int64)) / NS, until=now, now=now)
        for cell in report.cells:
            if cell.replay:
                month.queries += int(cell.replay["queries"])
                month.hits += int(cell.replay.get(f"hits@{setup.k}", 0))
                if cell.model_version not in month.versions:
                    month.versions.append(cell.model_version)
        alerts = Alerts.from_settings(store)
        try:
            cycle = run_cycle(store, catalog, alerts, window=Window.parse("week"), now=now)
        finally:
            alerts.close()
        month.drift_score, month.drift_detector = drift_peak(
            cycle.drift, int(start.astype("datetime64[us]").astype(np.int64)))
        month.alerts = sorted({a.kind for a in cycle.opened_alerts})
        month.critical = sorted({a.kind for a in cycle.opened_alerts
                                 if a.severity == "critical"})
    finally:
        store.close()
    hr = "-" if month.hit_rate is None else f"{month.hit_rate:.4f}"
    say(f"  {label}: {month.orders:,} orders, online HR@{setup.k} {hr} "
        f"({month.queries:,} queries; served by {', '.join(v[:8] for v in month.versions)}); "
        f"alerts opened: {', '.join(month.alerts) or 'none'}")
    triggers = _triggers(setup.retrain_on, month)
    if policy == "monthly" or (policy == "alert" and (triggers or early)):
        _retrain(setup, end, month, server, say)
    return month


def drift_peak(results: Sequence[Any], since_us: int) -> tuple[float | None, str]:
    """The highest score (statistic / alarm threshold) among the drift windows that end after
    ``since_us``, and its detector; (None, "") when no window has a threshold."""
    best: tuple[float | None, str] = (None, "")
    for r in results:
        if r.end_us <= since_us or not r.threshold or r.threshold <= 0:
            continue
        score = float(r.value) / float(r.threshold)
        if np.isfinite(score) and (best[0] is None or score > best[0]):
            best = (score, r.detector)
    return best


def _triggers(retrain_on: str, month: Month) -> list[str]:
    """The alert kinds opened this month that the ``alert`` policy retrains on."""
    if retrain_on == "any":
        return month.alerts
    if retrain_on == "critical":
        return month.critical
    kinds = {k.strip() for k in retrain_on.split(",")}
    return [k for k in month.alerts if k in kinds]


def _retrain(setup: Setup, end: np.datetime64, month: Month, server: _Server,
             say: Callable[[str], None]) -> None:
    from basketry.training.retrain import RetrainError, RetrainPlan, retrain

    plan = RetrainPlan(data=setup.data, read_options=setup.read_options, store_url=None,
                       days=setup.retrain_days, until=end - np.timedelta64(1, "ns"),
                       test_days=setup.test_days, min_baskets=setup.min_baskets,
                       seed=setup.seed)
    month.retrained = True
    try:
        done = retrain(plan)
    except RetrainError as exc:
        month.retrain_note = str(exc)
        say(f"    retrain failed, nothing changed: {exc}")
        return
    reg = done.outcome.registration
    month.promoted = bool(reg is not None and reg.decision.promote)
    month.retrain_note = reg.decision.summary() if reg is not None else ""
    say(f"    retrained on {done.n_baskets:,} baskets: "
        f"{'promoted' if month.promoted else 'not promoted'} ({month.retrain_note})")
    if month.promoted:
        from basketry.model import read_manifest

        server.wait_for(read_manifest(done.outcome.model_dir)["model_version"])


def _wait_written(store: Any, rids: Sequence[str], timeout: float = 120.0) -> None:
    """Until the writer process has stored every event of the month (capture is off the
    request path: events arrive a little after their answers)."""
    import sqlalchemy as sa

    if not rids:
        return
    deadline = time.monotonic() + timeout
    marks = ",".join(f"'{r}'" for r in rids[-50:])  # the last ones sent: written last
    while time.monotonic() < deadline:
        with store.engine.connect() as c:
            n = c.execute(sa.text("SELECT COUNT(DISTINCT request_id) FROM "
                                  f"recommendation_events WHERE request_id IN ({marks})"
                                  )).scalar_one()
        if n >= min(50, len(rids)):
            return
        time.sleep(0.2)
    raise SimulationError("the server's events were not all written within "
                          f"{timeout:.0f} s")


def _restamp(store: Any, rids: Sequence[str]) -> None:
    """Each event of the month at its order's time less a minute (see the module's
    docstring): what the server stamped is the replay's wall clock."""
    import sqlalchemy as sa

    with store.engine.begin() as c:
        c.execute(sa.text(f"""
            UPDATE recommendation_events SET time_us = (
                SELECT o.time_us - {SHOWN_BEFORE_US} FROM orders o
                JOIN order_requests r ON r.order_pk = o.id
                WHERE r.request_id = recommendation_events.request_id)
            WHERE request_id LIKE 'sim-%' AND EXISTS (
                SELECT 1 FROM order_requests r WHERE r.request_id =
                recommendation_events.request_id)
              AND time_us > (SELECT COALESCE(MAX(time_us), 0) FROM orders)"""))
    store.analyze()


def _iso(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t.astype("datetime64[us]"), unit="us")) + "Z"


class _Server:
    """``basketry serve`` on the policy's champion, capture on, in a process of its own."""

    def __init__(self, home: Path, port: int) -> None:
        self.port = port or _free_port()
        env = {**os.environ, "BASKETRY_HOME": str(home), "BASKETRY_MONITOR_CAPTURE": "true",
               "BASKETRY_MONITOR_DB": f"sqlite:///{home / 'monitoring.db'}",
               "BASKETRY_ACCESS_LOG": "false", "BASKETRY_LOG_LEVEL": "warning"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.log = (home / "server.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from basketry.cli import main; main()", "serve",
             "--model", "models:/basketry@champion", "--port", str(self.port), "--watch", "1"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SimulationError(f"the server exited ({self.proc.returncode}); see "
                                      f"{home / 'server.log'}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self._get("/readyz")[0] == 200:
                    return
            time.sleep(0.2)
        raise SimulationError(f"the server was not ready within 120 s; see {home / 'server.log'}")

    def _request(self, method: str, path: str, body: Any = None,
                 headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"content-type": "application/json", **(headers or {})}
        for attempt in range(2):  # a kept-alive connection the server closed: once again
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _get(self, path: str) -> tuple[int, bytes]:
        return self._request("GET", path)

    def recommend(self, basket: list[str], k: int, rid: str) -> None:
        status, body = self._request("POST", "/v1/recommendations",
                                     {"basket": basket, "k": k}, {"x-request-id": rid})
        if status != 200:
            raise SimulationError(f"POST /v1/recommendations answered {status}: "
                                  f"{body[:200].decode(errors='replace')}")

    def post_orders(self, orders: list[dict[str, Any]]) -> None:
        status, body = self._request("POST", "/v1/orders", {"orders": orders})
        if status != 200:
            raise SimulationError(f"POST /v1/orders answered {status}: "
                                  f"{body[:300].decode(errors='replace')}")

    def wait_for(self, version: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self._get("/v1/model")
            if status == 200 and json.loads(body).get("model_version") == version:
                return
            time.sleep(0.25)
        raise SimulationError(f"the server did not load {version} within {timeout:.0f} s")

    def close(self) -> None:
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def _server(home: Path, port: int) -> Iterator[_Server]:
    server = _Server(home, port)
    try:
        yield server
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
