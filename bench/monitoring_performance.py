"""Online performance at scale (issue 14): ``performance`` for a month of daily windows on a
store of 1,000,000 recommendation events and 100,000 orders, on SQLite and PostgreSQL.

The store holds 30 days (November 2026, UTC) of what a shop running basketry leaves in it:

- two real models of retail.dat (support 0.0005 then 0.0003, confidence 0.1), version A
  answering the first 15 days and B after; mined once and kept under bench/results;
- recommendation events whose baskets are up to 4 items of a real retail.dat basket, and whose
  answers are the serving model's real top 5 for that basket (``RuleScorer.top_items``);
- orders that are real retail.dat baskets of 2-20 items (mean about 8); 85% of them name the
  request id of an event shown 1-30 minutes before, whose basket was part of that order (the
  customer saw recommendations while filling the basket), so the attribution join has work.

The SQLite store is built once and kept under bench/results, keyed by its parameters
(``--rebuild`` builds it again); a PostgreSQL store (``--postgres URL``) is built in a schema of
its own, dropped at the end unless ``--keep-schema``. Then, per backend, the whole call as a user
meets it (a new store object and a new model catalog, then ``performance``), median of
``--repeats``:

  (1) cold: no stored windows: the 30 days computed (the replay of every order with the model
      serving at its time, and the attribution SQL), then stored;
  (2) warm, ``now`` inside the last day: 29 closed windows reused, the open one computed (the
      realistic daily use);
  (3) fully warm, ``now`` after the month: all 30 reused.

Then where the cold time goes (each step of the computation timed on its own), and the same
report through the command (``basketry monitor performance``) as a subprocess when it exists.
The goal: every case under 2 s.

    .venv/bin/python bench/monitoring_performance.py [--small] [--postgres URL] [--repeats 3]

``--small`` (20,000 events, 2,000 orders) finishes in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from _host import StealMeter  # bench/ is the script's directory

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "retail.dat"
RESULTS = ROOT / "bench" / "results"
BASKETRY = ROOT / ".venv" / "bin" / "basketry"

US = 1_000_000
DAY_US = 86_400 * US
#: The month of the store: 30 daily windows from 2026-11-01 00:00 UTC.
START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
SWITCH_DAY = 15  # version B answers from this day on
LINKED_SHARE = 0.85  # orders naming the request shown for them
ORDER_SIZES = (2, 20)  # items of the real baskets taken as orders
EVENT_BASKET = 4  # items of a basket asked about
K = 5  # items answered
CHUNK = 50_000  # events per bulk write
TABLES = ("recommendation_events", "orders", "order_items", "order_requests")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- the models -------------------------------------------------------------------------------


def build_model(support: float, confidence: float) -> Path:
    """The retail.dat model, mined once and kept under bench/results (reused when present)."""
    path = RESULTS / f"perf-model-retail-s{support}-c{confidence}"
    if (path / "manifest.json").is_file():
        return path
    from basketry.data import read_baskets
    from basketry.mining import AssociationMiner
    from basketry.training.artifact import save_model

    t = time.perf_counter()
    baskets = read_baskets(DATA)
    miner = AssociationMiner(min_support=support, min_confidence=confidence).fit(baskets)
    save_model(path, miner, baskets, overwrite=True)
    print(f"mined {path.name} in {time.perf_counter() - t:.1f} s", flush=True)
    return path


# ---- the store's contents -----------------------------------------------------------------------


def real_baskets() -> list[list[str]]:
    """retail.dat's baskets, each item once, in file order."""
    return [list(dict.fromkeys(line.split())) for line in DATA.read_text().splitlines()
            if line.strip()]


class Plan:
    """Every event's time, basket and version, and every order's time, items and request: all
    drawn from the seed before anything is written, so a build is the same each time."""

    def __init__(self, n_events: int, n_orders: int, seed: int) -> None:
        lines = real_baskets()
        rng = np.random.default_rng(seed)
        pick = random.Random(seed)
        start_us = int(START.timestamp()) * US
        self.end_us = start_us + DAYS * DAY_US
        self.switch_us = start_us + SWITCH_DAY * DAY_US
        self.event_us = np.sort(rng.integers(start_us, self.end_us, n_events))
        self.request_ids = [f"{i:08x}{r:016x}" for i, r in
                            enumerate(rng.integers(0, 2**63, n_events).tolist())]
        sizes = np.array([len(b) for b in lines])
        pool = np.flatnonzero((sizes >= ORDER_SIZES[0]) & (sizes <= ORDER_SIZES[1]))
        order_basket = rng.choice(pool, n_orders)
        self.order_items = [lines[i] for i in order_basket.tolist()]
        n_linked = round(LINKED_SHARE * n_orders)
        linked = rng.choice(n_events, n_linked, replace=False)
        self.order_us = rng.integers(start_us, self.end_us, n_orders)
        delay = rng.integers(60 * US, 30 * 60 * US, n_linked)
        self.order_us[:n_linked] = np.minimum(self.event_us[linked] + delay, self.end_us - 1)
        self.order_request: list[str | None] = [None] * n_orders
        # an event's basket: part of a random real basket, or of the order it was shown for
        source = [lines[i] for i in rng.choice(np.flatnonzero(sizes >= 2), n_events).tolist()]
        self.event_basket: list[list[str]] = [
            pick.sample(b, min(EVENT_BASKET, len(b))) for b in source]
        for j, e in enumerate(linked.tolist()):
            items = self.order_items[j]
            self.event_basket[e] = pick.sample(items, min(EVENT_BASKET, len(items) - 1))
            self.order_request[j] = self.request_ids[e]


def scored(scorer: Any, baskets: Sequence[Sequence[str]]) -> tuple[list[list[str]], np.ndarray]:
    """The scorer's top ``K`` for each basket (what serving answers), and how many came from
    rules."""
    ids = scorer.item_ids
    rows = [sorted({ids[i] for i in b if i in ids}) for b in baskets]
    ptr = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    flat = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(ptr[-1]))
    top, from_rules = scorer.top_items(ptr, flat, K)
    items = scorer.items
    return [[items[i] for i in row if i >= 0] for row in top.tolist()], from_rules


def populate(store: Any, plan: Plan, scorers: Sequence[Any]) -> None:
    """Write the plan's events (with their real answers) and orders in bulk, then ANALYZE."""
    from basketry.monitoring import RecommendationEvent

    n = plan.event_us.shape[0]
    rng = random.Random(1)
    t = time.perf_counter()
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        version_b = plan.event_us[a:b] >= plan.switch_us
        events: list[Any] = [None] * (b - a)
        for v, scorer in enumerate(scorers):
            at = np.flatnonzero(version_b == bool(v)).tolist()
            if not at:
                continue
            answers, from_rules = scored(scorer, [plan.event_basket[a + i] for i in at])
            for i, returned, rules in zip(at, answers, from_rules.tolist(), strict=True):
                events[i] = RecommendationEvent(
                    plan.event_us[a + i] / US, plan.request_ids[a + i], scorer.model_version,
                    "single", tuple(plan.event_basket[a + i]), tuple(returned),
                    min(rules, len(returned)), len(returned) - min(rules, len(returned)),
                    rng.uniform(0.2, 2.0))
        store.add_events(events)
        rate = b / (time.perf_counter() - t)
        print(f"\r  events {b:,}/{n:,} ({rate:,.0f}/s)", end="", flush=True)
    print()
    n = len(plan.order_items)
    t = time.perf_counter()
    for a in range(0, n, 10_000):
        b = min(a + 10_000, n)
        store.add_orders([
            {"order_id": f"o{j:07d}", "time": int(plan.order_us[j]) / US,
             "items": plan.order_items[j],
             "request_ids": [r] if (r := plan.order_request[j]) is not None else []}
            for j in range(a, b)])
        print(f"\r  orders {b:,}/{n:,} ({b / (time.perf_counter() - t):,.0f}/s)", end="",
              flush=True)
    print()
    t = time.perf_counter()
    store.analyze()
    print(f"  ANALYZE in {time.perf_counter() - t:.1f} s", flush=True)


def build(url: str, plan_args: tuple[int, int, int], scorers: Sequence[Any]) -> None:
    from basketry.monitoring.store import MonitorStore

    t = time.perf_counter()
    print(f"planning {plan_args[0]:,} events and {plan_args[1]:,} orders...", flush=True)
    plan = Plan(*plan_args)
    store = MonitorStore(url)
    store.migrate()
    populate(store, plan, scorers)
    store.close()
    print(f"  store built in {time.perf_counter() - t:.0f} s", flush=True)
    # a window is stored (and reused) only once its orders' receipts are older than the
    # margin given to transactions committing late: wait it out, as a live store would be
    from basketry.monitoring.performance import RECEIPT_MARGIN_US

    wait = RECEIPT_MARGIN_US / US
    print(f"  waiting {wait:.0f} s: the orders just received are trusted only after it",
          flush=True)
    time.sleep(wait)


def sqlite_store(key: str, plan_args: tuple[int, int, int], scorers: Sequence[Any],
                 rebuild: bool) -> str:
    """The SQLite store of these parameters under bench/results, built when missing."""
    path = RESULTS / f"perf-store-{key}.db"
    done = path.with_suffix(".done")
    if rebuild or not done.is_file():
        for p in (path, done, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        build(f"sqlite:///{path}", plan_args, scorers)
        done.write_text(json.dumps({"built": time.time()}) + "\n")
    else:
        print(f"SQLite store: {path.name} (kept from an earlier run; --rebuild builds it again)")
    return f"sqlite:///{path}"


class PostgresSchema:
    """A schema of its own in the given database, as tests/monitoring/conftest.py makes."""

    def __init__(self, base: str, name: str | None) -> None:
        import sqlalchemy as sa

        self.name = name or f"perf_{uuid.uuid4().hex[:10]}"
        self.engine = sa.create_engine(base)
        with self.engine.begin() as c:
            self.existed = bool(c.execute(sa.text(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
                {"n": self.name}).scalar())
            c.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {self.name}"))
        sep = "&" if "?" in base else "?"
        self.url = f"{base}{sep}options={quote(f'-csearch_path={self.name}')}"

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {self.name} CASCADE"))
        self.engine.dispose()


# ---- the measurements -----------------------------------------------------------------------


class Case:
    """One report asked for: its period and ``now``; ``reused`` is how many stored windows
    it should take. A warm case is primed first (the windows table emptied, then the same
    report made once, untimed apart: the state a report made earlier leaves)."""

    def __init__(self, name: str, since: float, until: float | None, now: float,
                 reused: int, warm: bool) -> None:
        self.name, self.since, self.until, self.now = name, since, until, now
        self.reused, self.warm = reused, warm


def cases(end: float) -> list[Case]:
    since = START.timestamp()
    return [Case("cold (30 computed)", since, end, end + 86_400, 0, False),
            Case("warm, now in the last day", since, None, end - 43_200, DAYS - 1, True),
            Case("fully warm (30 reused)", since, end, end + 86_400, DAYS, True)]


def clear_windows(url: str) -> None:
    import sqlalchemy as sa

    from basketry.monitoring.store import MonitorStore

    store = MonitorStore(url)
    with store.engine.begin() as c:
        c.execute(sa.text("DELETE FROM windows"))
    store.close()


def timed_call(url: str, models: Sequence[Path], case: Case) -> tuple[float, float, Any]:
    """The call as a user meets it: a new store object and catalog, then the report; its
    wall time and this process's CPU time (steadier on a shared machine; with PostgreSQL the
    server's own work is not in it)."""
    from basketry.monitoring.catalog import ModelCatalog
    from basketry.monitoring.performance import performance
    from basketry.monitoring.store import MonitorStore
    from basketry.monitoring.windows import Window

    t, cpu = time.perf_counter(), time.process_time()
    store = MonitorStore(url)
    report = performance(store, ModelCatalog(models), window=Window.parse("day"),
                         since=case.since, until=case.until, now=case.now)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    store.close()
    return seconds, cpu, report


def measure(url: str, models: Sequence[Path], end: float, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases(end):
        times, cpus, counts = [], [], set()
        primed = None
        if case.warm:
            clear_windows(url)
            primed, _, _ = timed_call(url, models, case)
        steal = StealMeter()
        for _ in range(repeats):
            if not case.warm:
                clear_windows(url)
            seconds, cpu, report = timed_call(url, models, case)
            times.append(seconds)
            cpus.append(cpu)
            counts.add((report.reused, report.computed))
        share = steal.share()
        reused = sorted(counts)
        ok = all(r == case.reused for r, _ in reused)
        out[case.name] = {"median_s": statistics.median(times), "runs_s": times,
                          "cpu_median_s": statistics.median(cpus), "reused_computed": reused,
                          "steal": share, "primed_in_s": primed}
        runs = ", ".join(f"{x:.2f}" for x in times)
        first = "" if primed is None else f"; the priming call, cold: {primed:.2f} s"
        print(f"  {case.name:26s} median {statistics.median(times):6.3f} s, CPU "
              f"{statistics.median(cpus):.3f} s  (runs {runs}; "
              f"reused/computed {'/'.join(map(str, reused[0]))}"
              f"{'' if ok else ' UNEXPECTED'}{first}; steal {share:.0%}; "
              f"load {load_average()})", flush=True)
    return out


def breakdown(url: str, models: Sequence[Path], end: float) -> dict[str, float]:
    """The cold computation's steps timed one by one, in the order performance() runs them
    (one run of [first day, end): every window missing makes one contiguous range)."""
    from basketry.monitoring import aggregates
    from basketry.monitoring.catalog import ModelCatalog
    from basketry.monitoring.performance import Params, replay_counts, serving_versions
    from basketry.monitoring.store import MonitorStore

    params = Params()
    a, b = int(START.timestamp()) * US, round(end * US)
    store = MonitorStore(url)
    steps: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        steps[name] = time.perf_counter() - t
        return value

    with store.engine.connect() as c:
        spans = step("version spans (SQL)", lambda: aggregates.version_spans(c))
        step("stored windows and receipts (SQL)", lambda: (
            aggregates.latest_receipts(c, a, b, DAY_US, 0),
            aggregates.stored_windows(c, "day", a, b)))
        orders = step("order items (SQL + arrays)", lambda: aggregates.order_items(c, a, b))
        att = step("attribution (SQL)", lambda: aggregates.attributed(c, a, b, params.ks))
    catalog = ModelCatalog(models)
    scorers = step("loading the models", lambda: [catalog.scorer(s.model_version)
                                                  for s in spans])
    serving = serving_versions(orders.time_us, spans)
    bucket = (orders.time_us // DAY_US) * DAY_US

    def replay() -> None:
        for v, scorer in enumerate(scorers):
            chosen = np.flatnonzero(serving == v)
            for start in np.unique(bucket[chosen]):
                replay_counts(scorer, orders, chosen[bucket[chosen] == start], params)

    step("replay (scoring, per version and day)", replay)
    store.close()
    steps["orders read"] = orders.n_orders
    steps["attribution rows"] = att.order_pk.shape[0]
    return steps


def cli_available() -> bool:
    if not BASKETRY.exists():
        return False
    done = subprocess.run([str(BASKETRY), "monitor", "performance", "--help"],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0


def cli_times(url: str, models: Sequence[Path], end: float, repeats: int) -> dict[str, Any]:
    """``basketry monitor performance --window day --since --until`` as a subprocess: cold
    (the windows table emptied first) and warm (every day reused: the month is long closed).
    ``BASKETRY_HOME`` is an empty folder, so the registry it also looks in is empty and
    nothing is written to the user's."""
    day = START.date().isoformat()
    last = datetime.fromtimestamp(end, UTC).date().isoformat()
    argv = [str(BASKETRY), "monitor", "performance", "--db", url, "--window", "day",
            "--since", day, "--until", last]
    for m in models:
        argv += ["--model", str(m)]
    home = tempfile.mkdtemp(prefix="perf-home-")
    try:
        return _cli_cases(argv, {**os.environ, "BASKETRY_HOME": home}, url, repeats)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _cli_cases(argv: list[str], env: dict[str, str], url: str,
               repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # the command's own start-up, as a floor: the same command asked for its help
    for name, clear in (("--help", False), ("cold", True), ("warm", False)):
        times = []
        for _ in range(repeats):
            if clear:
                clear_windows(url)
            t = time.perf_counter()
            done = subprocess.run([*argv[:3], "--help"] if name == "--help" else argv,
                                  capture_output=True, text=True, check=False, env=env)
            times.append(time.perf_counter() - t)
            if done.returncode != 0:
                line = (done.stderr or done.stdout).strip().splitlines()[-1:]
                print(f"  the command failed ({done.returncode}): {' '.join(line)}")
                return {"failed": line}
        out[name] = {"median_s": statistics.median(times), "runs_s": times}
        print(f"  the command, {name:6s}: median {statistics.median(times):6.3f} s "
              f"(runs {', '.join(f'{x:.2f}' for x in times)}; load {load_average()})",
              flush=True)
    return out


def run_backend(name: str, url: str, models: Sequence[Path], end: float, repeats: int,
                with_cli: bool) -> dict[str, Any]:
    from basketry.monitoring.store import MonitorStore

    store = MonitorStore(url)
    rows = {t: store.count(t) for t in TABLES}
    store.close()
    print(f"\n{name}: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()), flush=True)
    result: dict[str, Any] = {"rows": rows, "cases": measure(url, models, end, repeats)}
    steps = breakdown(url, models, end)
    result["cold_steps"] = steps
    print("  where the cold time goes: " + ", ".join(
        f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v:,}" for k, v in steps.items()))
    if with_cli:
        result["command"] = cli_times(url, models, end, repeats)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="20,000 events and 2,000 orders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--supports", type=float, nargs=2, default=(0.0005, 0.0003),
                        help="the two models' minimum supports (versions A and B)")
    parser.add_argument("--confidence", type=float, default=0.1)
    parser.add_argument("--rebuild", action="store_true", help="build the SQLite store again")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="also measure on PostgreSQL (a schema of its own in this database)")
    parser.add_argument("--keep-schema", metavar="NAME", default=None,
                        help="use (and keep) this PostgreSQL schema; built only when empty")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-command", action="store_true",
                        help="do not time `basketry monitor performance` as a subprocess")
    args = parser.parse_args()
    if args.small:
        args.events, args.orders = 20_000, 2_000
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"load average {load_average()}", flush=True)

    from basketry.model import load_model

    models = [build_model(s, args.confidence) for s in args.supports]
    scorers = [load_model(m) for m in models]
    for label, m, s in zip("AB", models, scorers, strict=True):
        print(f"version {label}: {m.name} ({s.model_version}, {len(s.items):,} items)")
    plan_args = (args.events, args.orders, args.seed)
    key = (f"e{args.events}-o{args.orders}-seed{args.seed}-"
           + "-".join(s.model_version[:8] for s in scorers))
    end = (START.timestamp() + DAYS * 86_400)
    with_cli = not args.no_command and cli_available()
    if not args.no_command and not with_cli:
        print("(`basketry monitor performance` does not exist yet: the command is not timed)")
    results: dict[str, Any] = {"settings": {**vars(args), "models": [str(m) for m in models]},
                               "load_before": load_average()}
    if not args.no_sqlite:
        url = sqlite_store(key, plan_args, scorers, args.rebuild)
        results["sqlite"] = run_backend("SQLite", url, models, end, args.repeats, with_cli)
    if args.postgres:
        schema = PostgresSchema(args.postgres, args.keep_schema)
        try:
            from basketry.monitoring.store import MonitorStore

            probe = MonitorStore(schema.url)
            probe.migrate()
            empty = probe.count("recommendation_events") == 0
            probe.close()
            if empty:
                print(f"PostgreSQL store: building schema {schema.name}", flush=True)
                build(schema.url, plan_args, scorers)
            else:
                print(f"PostgreSQL store: schema {schema.name} (kept from an earlier run)")
            results["postgresql"] = run_backend("PostgreSQL", schema.url, models, end,
                                                args.repeats, with_cli)
        finally:
            if args.keep_schema is None:
                schema.drop()
    out = RESULTS / f"monitoring_performance{'-small' if args.small else ''}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults: {out.relative_to(ROOT)}  (load average {load_average()})")
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            r = results[backend]
            figures = {name: c["median_s"] for name, c in r["cases"].items()}
            figures |= {f"the command, {name}": c["median_s"]
                        for name, c in r.get("command", {}).items() if "median_s" in c}
            over = [name for name, s in figures.items() if s >= 2.0]
            print(f"goal on {backend} (every median under 2 s): "
                  + ("met" if not over else "NOT met: " + ", ".join(over)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
