"""Measured drift detection quality (issue 15): how soon each detector finds a planted change,
how often it alarms when nothing changed, what it misses; Evidently's default categorical drift
check on the same windows, side by side.

The streams are synthetic histories (``basketry.data.synthetic``, what ``basketry generate``
writes) of ``--orders-per-day`` baskets a day over a training period and a monitored period:

- the model is mined on the training period (``AssociationMiner``, saved and loaded as a model
  artifact, so the detectors read the reference profile a real model carries);
- the no-change stream's monitored days are the false-alarm windows (one window a day);
- each planted change (``--drift``-style ``KIND:SIZE``) is planted at ``--instances`` different
  days of the monitored period, each in a stream of its own drawn with the same seed (the
  baskets before the day are the no-change stream's, so one model serves them all), and its
  ``--horizon`` windows from the change day on are checked: the delay is the first alarming
  window (1 = the change's own day), a miss is no alarm within the horizon.

Per window, the detectors see what the monitoring store would hold: the day's orders, the
recommendation requests (each order of two items or more with one item hidden, the protocol's
query) with the model's real top-10 answers, the rule-based answers as the served
recommendations, and the online HR@10 (hidden item in the answer) for the sequential detector.
Detectors: ``basketry.monitoring.drift_data.data_drift`` (false alarm rate 0.01) and
``drift_concept.concept_drift`` (FDR 0.05) per window, ``hit_rate_changes`` over each stream's
sequence of windows. Evidently: ``ValueDrift`` of the item column (the window's order rows
against the training period's), method and threshold left to Evidently, in a virtualenv made
under bench/results (``--evidently-venv``), run as a subprocess exchanging CSV files.

    .venv/bin/python bench/drift.py [--quick] [--no-evidently] [--out FILE.json]

``--quick`` (small catalogue, 30 monitored days, one instance per change) is a smoke run of
well under a minute once Evidently's virtualenv exists (making it takes a minute, once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EVIDENTLY_VENV = RESULTS / "evidently-venv"
EVIDENTLY_PINS = ("evidently==0.7.23", "pandas<3")  # Evidently breaks with pandas 3
US = 1_000_000
DAY_S = 86_400
K = 10  # items answered per request, and the HR@k of the sequential detector


@dataclass(frozen=True)
class Config:
    n_items: int = 2_000
    orders_per_day: int = 2_000
    train_days: int = 60
    monitor_days: int = 120
    patterns: int = 100
    mean_size: float = 8.0
    # each kind at a smaller and a larger size (KIND:SIZE, as basketry generate --drift)
    # (and every planted pattern broken: a fall in the online hit rate, for its detector)
    changes: tuple[str, ...] = ("popularity:0.2", "popularity:0.5", "new-items:0.01",
                                "new-items:0.03", "break-rule:1", "break-rule:5",
                                "break-rule:100", "basket-size:1.1", "basket-size:1.25")
    instances: int = 5
    horizon: int = 5
    min_support: float = 0.002
    min_confidence: float = 0.2
    false_alarm_rate: float = 0.01
    fdr: float = 0.05
    seed: int = 0

    @property
    def days(self) -> int:
        return self.train_days + self.monitor_days

    def change_days(self) -> list[int]:
        """The days changes are planted on, spread over the monitored period."""
        gap = (self.monitor_days - self.horizon) // (self.instances + 1)
        return [self.train_days + gap * (j + 1) for j in range(self.instances)]


QUICK = Config(n_items=300, orders_per_day=500, train_days=20, monitor_days=30, patterns=30,
               changes=("popularity:0.5", "new-items:0.03", "break-rule:1", "basket-size:1.25"),
               instances=1, horizon=3, min_support=0.005)


def source_version() -> str:
    """The commit the detectors come from, and whether the work tree changed them."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                              text=True).stdout.strip()
    edited = git("status", "--porcelain", "--", "src/basketry/monitoring")
    return git("rev-parse", "--short", "HEAD") + (" (monitoring edited)" if edited else "")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- streams ---------------------------------------------------------------------------------

def history(cfg: Config, drift: str | None = None, day: int | None = None) -> Any:
    """The synthetic history, with ``drift`` (``KIND:SIZE``) planted at ``day``."""
    from basketry.data.synthetic import SyntheticSpec, generate
    from basketry.data.synthetic_drift import parse_drift

    drifts = ()
    if drift is not None:
        kind, _, size = drift.partition(":")
        drifts = (parse_drift(f"{kind}:{day}:{size}" if size else f"{kind}:{day}"),)
    return generate(SyntheticSpec(
        n_baskets=cfg.orders_per_day * cfg.days, n_items=cfg.n_items,
        mean_basket_size=cfg.mean_size, n_patterns=cfg.patterns, days=cfg.days, seed=cfg.seed,
        drifts=drifts))


def day_bounds(baskets: Any, days: int) -> np.ndarray:
    """First basket of each day (and the end): baskets are in time order."""
    seconds = (baskets.timestamps - baskets.timestamps[0].astype("datetime64[D]")) \
        // np.timedelta64(1, "s")
    return np.searchsorted(seconds, np.arange(days + 1) * DAY_S)


def train(cfg: Config, baskets: Any, bounds: np.ndarray, where: Path) -> Any:
    from basketry.mining import AssociationMiner
    from basketry.model import load_model
    from basketry.training.artifact import save_model

    part = baskets.subset(np.arange(bounds[cfg.train_days]))
    miner = AssociationMiner(min_support=cfg.min_support, min_confidence=cfg.min_confidence)
    miner.fit(part)
    save_model(where, miner, part, overwrite=True)
    return load_model(where), part


@dataclass
class Window:
    day: int
    start_us: int
    end_us: int
    orders: Any  # drift_types.Baskets
    requests: Any
    served: Any
    hits: int
    queries: int
    order_items: list[str] = field(repr=False, default_factory=list)


def window_of(model: Any, baskets: Any, lo: int, hi: int, day: int, seed: int) -> Window:
    """Day ``day``'s orders (baskets ``lo:hi``) as the monitoring store would hold them."""
    from basketry.model.protocol import ranks_of_hidden
    from basketry.monitoring.drift_types import Baskets, ServedRecommendations

    indptr = baskets.indptr[lo : hi + 1] - baskets.indptr[lo]
    ids = baskets.indices[baskets.indptr[lo] : baskets.indptr[hi]]
    names = baskets.items[ids].tolist()
    orders = Baskets(indptr, names)
    # the request: the order with one random item hidden (orders of two items or more)
    sizes = np.diff(indptr)
    rng = np.random.default_rng([seed, day])
    asked = np.flatnonzero(sizes >= 2)
    hidden_pos = indptr[asked] + rng.integers(0, sizes[asked])
    keep = np.ones(ids.shape[0], dtype=bool)
    keep[hidden_pos] = False
    row = np.repeat(np.arange(sizes.shape[0]), sizes)
    in_request = keep & np.isin(row, asked)
    req_ptr = np.zeros(asked.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes[asked] - 1, out=req_ptr[1:])
    req_names = [names[i] for i in np.flatnonzero(in_request).tolist()]
    requests = Baskets(req_ptr, req_names)
    # the model's answers: its ids of the request's items (unknown ones dropped)
    model_ids = np.fromiter((model.item_ids.get(n, -1) for n in names), dtype=np.int64,
                            count=len(names))
    req_ids = model_ids[in_request]
    known = req_ids >= 0
    q_row = np.repeat(np.arange(asked.shape[0]), sizes[asked] - 1)
    q_ptr = np.zeros(asked.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(q_row[known], minlength=asked.shape[0]), out=q_ptr[1:])
    order = np.lexsort((req_ids[known], q_row[known]))  # ascending ids within a query
    top, from_rules = model.top_items(q_ptr, req_ids[known][order].astype(np.int32), K)
    hits = int((ranks_of_hidden(top, model_ids[hidden_pos].astype(np.int32)) > 0).sum())
    take = np.arange(K)[None, :] < np.asarray(from_rules)[:, None]
    served_basket, served_pos = np.nonzero(take)
    items = model.items
    returned = [items[i] for i in top[served_basket, served_pos].tolist()]
    served = ServedRecommendations(requests, served_basket.astype(np.int64), returned)
    start_us = day * DAY_S * US
    return Window(day, start_us, start_us + DAY_S * US, orders, requests, served, hits,
                  int(asked.shape[0]), names)


def windows(model: Any, baskets: Any, bounds: np.ndarray, days: range, seed: int
            ) -> Iterator[Window]:
    for d in days:
        yield window_of(model, baskets, int(bounds[d]), int(bounds[d + 1]), d, seed)


# -- detectors -------------------------------------------------------------------------------

class Detectors:
    """The detectors of basketry.monitoring, as far as they exist in this checkout."""

    def __init__(self, cfg: Config, model: Any) -> None:
        from basketry.model.profile import reference_profile

        self.cfg, self.model = cfg, model
        self.reference = reference_profile(model)
        try:
            from basketry.monitoring import drift_concept
        except ImportError:
            drift_concept = None
        self.concept = drift_concept

    def per_window(self, w: Window) -> dict[str, tuple[bool, float, float | None]]:
        """Each per-window detector's verdict, value and threshold."""
        from basketry.monitoring.drift_data import data_drift

        results = data_drift(self.reference, w.orders, w.requests, start_us=w.start_us,
                             end_us=w.end_us, false_alarm_rate=self.cfg.false_alarm_rate)
        if self.concept is not None:
            results += self.concept.concept_drift(self.model, w.orders, w.served,
                                                  start_us=w.start_us, end_us=w.end_us,
                                                  fdr=self.cfg.fdr)
        return {r.detector: (bool(r.drifted), r.value, r.threshold) for r in results
                if r.detector != "hit_rate_change"}

    def sequential(self, ws: list[Window]) -> list[bool] | None:
        """The hit-rate change detector over a stream's windows in order: alarm per window."""
        if self.concept is None or not hasattr(self.concept, "hit_rate_changes"):
            return None
        results = self.concept.hit_rate_changes(
            [(w.start_us, w.end_us, w.hits, w.queries) for w in ws],
            model_version=self.model.model_version)
        return [bool(r.drifted) for r in results]


# -- Evidently -------------------------------------------------------------------------------

def evidently_python(venv: Path) -> Path:
    """The interpreter of Evidently's virtualenv, made (once) when missing."""
    python = venv / "bin" / "python"
    stamp = venv / "pins.txt"
    if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(EVIDENTLY_PINS):
        return python
    print(f"making Evidently's virtualenv in {venv} ({', '.join(EVIDENTLY_PINS)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_PINS], check=True)
    stamp.write_text("\n".join(EVIDENTLY_PINS))
    return python


def run_evidently(python: Path, train_items: list[str], batches: list[list[str]],
                  work: Path) -> list[dict[str, Any]]:
    """Evidently's verdict on each batch of order items (in order), against the training's."""
    ref, win, out = work / "reference.csv", work / "windows.csv", work / "evidently.jsonl"
    with ref.open("w") as f:
        f.write("item\n")
        f.write("\n".join(train_items) + "\n")
    with win.open("w") as f:
        f.write("window,item\n")
        for j, items in enumerate(batches):
            f.write("".join(f"{j},{item}\n" for item in items))
    subprocess.run([str(python), str(Path(__file__).with_name("_evidently_drift.py")),
                    str(ref), str(win), str(out)], check=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    if [r["window"] for r in rows] != list(range(len(batches))):
        raise SystemExit("Evidently did not answer every window")
    return rows


# -- the measure -----------------------------------------------------------------------------

def _holding(w: Window, items: list[str]) -> np.ndarray:
    """Per order of ``w``: does it hold every one of ``items``?"""
    names = np.array(w.order_items, dtype=object)
    row = np.repeat(np.arange(w.orders.n), w.orders.sizes)
    found = np.zeros((w.orders.n, len(items)), dtype=bool)
    for j, item in enumerate(items):
        found[row[names == item], j] = True
    return found.all(axis=1)


def effect(planted: dict[str, Any], changed: list[Window], unchanged: list[Window]
           ) -> dict[str, float]:
    """The planted change as measured on the orders of its windows, against the same days
    without it: what the detectors had to see."""
    def share(ws: list[Window], items: list[str]) -> float:
        wanted = set(items)
        return sum(sum(i in wanted for i in w.order_items) for w in ws) / max(
            sum(len(w.order_items) for w in ws), 1)

    kind = planted["kind"]
    if kind in ("popularity", "new-items"):
        return {"items_share_before": share(unchanged, planted["items"]),
                "items_share_after": share(changed, planted["items"])}
    if kind == "basket-size":
        def mean(ws: list[Window]) -> float:
            return sum(len(w.order_items) for w in ws) / max(sum(w.orders.n for w in ws), 1)
        return {"mean_size_before": mean(unchanged), "mean_size_after": mean(changed)}
    rule = planted["rules"][0]  # the most frequent pattern's rule

    def confidence(ws: list[Window]) -> float:
        a = sum(int(_holding(w, rule["antecedent"]).sum()) for w in ws)
        ac = sum(int(_holding(w, [*rule["antecedent"], rule["consequent"]]).sum()) for w in ws)
        return ac / max(a, 1)

    hit_rate = {"hit_rate_before": sum(w.hits for w in unchanged) / max(
        sum(w.queries for w in unchanged), 1),
                "hit_rate_after": sum(w.hits for w in changed) / max(
        sum(w.queries for w in changed), 1)}
    return {"confidence_before": confidence(unchanged), "confidence_after": confidence(changed),
            **hit_rate}


def delay(alarms: list[bool]) -> int | None:
    """1-based index of the first alarm (None: missed)."""
    return next((j + 1 for j, a in enumerate(alarms) if a), None)


def run(cfg: Config, evidently: Path | None, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    base = history(cfg)
    bounds = day_bounds(base, cfg.days)
    model, train_part = train(cfg, base, bounds, work / "model")
    detectors = Detectors(cfg, model)
    print(f"model {model.model_version}: {model.n_rules:,} rules on {train_part.n_baskets:,} "
          f"baskets, {len(model.items):,} items; concept detectors: "
          f"{'yes' if detectors.concept else 'not in this checkout'}", flush=True)
    monitored = range(cfg.train_days, cfg.days)
    base_windows = list(windows(model, base, bounds, monitored, cfg.seed))
    no_change = [detectors.per_window(w) for w in base_windows]
    base_sequential = detectors.sequential(base_windows)
    ev_batches: list[list[str]] = [w.order_items for w in base_windows]
    changes: list[dict[str, Any]] = []
    for change in cfg.changes:
        for day in cfg.change_days():
            stream = history(cfg, change, day)
            sb = day_bounds(stream, cfg.days)
            horizon = range(day, min(day + cfg.horizon, cfg.days))
            ws = list(windows(model, stream, sb, horizon, cfg.seed))
            verdicts = [detectors.per_window(w) for w in ws]
            before = [w for w in base_windows if w.day < day]
            seq = detectors.sequential(before + ws)
            same_days = [w for w in base_windows if w.day in horizon]
            changes.append({"change": change, "day": day, "verdicts": verdicts,
                            "effect": effect(stream.report["drifts"][0], ws, same_days),
                            "sequential": None if seq is None else seq[len(before):],
                            "evidently_first": len(ev_batches),
                            "planted": stream.report["drifts"][0]})
            ev_batches += [w.order_items for w in ws]
            print(f"  {change} at day {day}: done ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    ours_seconds = time.perf_counter() - started
    evidently_rows = None
    if evidently is not None:
        train_items = train_part.items[train_part.indices].tolist()
        evidently_rows = run_evidently(evidently, train_items, ev_batches, work)
    return summarise(cfg, no_change, base_sequential, changes, evidently_rows,
                     len(base_windows), ours_seconds)


def margins(no_change: list[dict[str, tuple[bool, float, float | None]]]
            ) -> dict[str, list[float]]:
    """Per detector, the median, 99th percentile and largest value / threshold over the
    no-change windows (how close to its threshold a detector runs without change)."""
    ratios: dict[str, list[float]] = {}
    for v in no_change:
        for d, (_, value, threshold) in v.items():
            if threshold:
                ratios.setdefault(d, []).append(value / threshold)
    return {d: [round(float(x), 3) for x in np.quantile(r, [0.5, 0.99, 1.0])]
            for d, r in sorted(ratios.items())}


def summarise(cfg: Config, no_change: list[dict[str, tuple[bool, float, float | None]]],
              base_sequential: list[bool] | None, changes: list[dict[str, Any]],
              evidently_rows: list[dict] | None, n_windows: int,
              ours_seconds: float) -> dict[str, Any]:
    names = sorted({d for v in no_change for d in v})
    if base_sequential is not None:
        names.append("hit_rate_change")
    alarms: dict[str, list[bool]] = {d: [v[d][0] if d in v else False for v in no_change]
                                     for d in names}
    if base_sequential is not None:
        alarms["hit_rate_change"] = base_sequential
    if evidently_rows is not None:
        alarms["evidently"] = [r["drifted"] for r in evidently_rows[:n_windows]]
    alarms["any of ours"] = [any(alarms[d][j] for d in names) for j in range(n_windows)]
    false_alarms = {d: {"alarms": sum(a), "windows": len(a), "rate": sum(a) / max(len(a), 1)}
                    for d, a in alarms.items()}
    delays: dict[str, dict[str, list[int | None]]] = {}
    for c in changes:
        per = {d: [v[d][0] if d in v else False for v in c["verdicts"]] for d in names
               if d != "hit_rate_change"}
        if c["sequential"] is not None:
            per["hit_rate_change"] = c["sequential"]
        per["any of ours"] = [any(per[d][j] for d in per) for j in range(len(c["verdicts"]))]
        if evidently_rows is not None:
            first = c["evidently_first"]
            per["evidently"] = [r["drifted"] for r in
                                evidently_rows[first:first + len(c["verdicts"])]]
        for d, a in per.items():
            delays.setdefault(c["change"], {}).setdefault(d, []).append(delay(a))
    evidently_info = None
    if evidently_rows is not None:
        values = [r["value"] for r in evidently_rows[:n_windows]]
        evidently_info = {"method": evidently_rows[0]["method"],
                          "threshold": evidently_rows[0]["threshold"],
                          "no_change_value_median": float(np.median(values)),
                          "seconds_per_window": float(np.median(
                              [r["seconds"] for r in evidently_rows]))}
    return {"config": asdict(cfg), "source": source_version(), "load_average": load_average(),
            "false_alarms": false_alarms, "no_change_margins": margins(no_change),
            "delays": delays,
            "planted": [c["planted"] | {"change": c["change"], "effect": c["effect"]}
                        for c in changes],
            "effects": effects(changes),
            "evidently": evidently_info, "seconds_ours": ours_seconds}


def effects(changes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per change, the mean of each measured effect over its instances."""
    out: dict[str, dict[str, list[float]]] = {}
    for c in changes:
        for k, v in c["effect"].items():
            out.setdefault(c["change"], {}).setdefault(k, []).append(v)
    return {c: {k: round(float(np.mean(v)), 4) for k, v in e.items()} for c, e in out.items()}


def table(summary: dict[str, Any]) -> str:
    """The result as a Markdown table: a row per detector, false alarms then each change."""
    cfg = summary["config"]
    changes = list(summary["delays"])
    header = ["detector", "false alarms"] + [f"`{c}`" for c in changes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for d, fa in summary["false_alarms"].items():
        cells = [f"`{d}`" if d not in ("any of ours", "evidently") else d,
                 f"{fa['rate']:.1%} ({fa['alarms']}/{fa['windows']})"]
        for c in changes:
            found = summary["delays"][c].get(d)
            if found is None:
                cells.append("n/a")
                continue
            hit = [x for x in found if x is not None]
            misses = len(found) - len(hit)
            span = "-" if not hit else (f"{min(hit)}" if min(hit) == max(hit)
                                        else f"{min(hit)}-{max(hit)}")
            cells.append(f"{span} ({misses}/{len(found)})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Per change: the delay, the windows from the change's own (1) to the first "
                 f"alarm (range over the {cfg['instances']} instance(s); -: none found), and in "
                 f"brackets the misses, instances without an alarm within {cfg['horizon']} "
                 f"windows.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 1 minute)")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--evidently-venv", type=Path, default=EVIDENTLY_VENV)
    parser.add_argument("--orders-per-day", type=int)
    parser.add_argument("--items", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--instances", type=int, help="days each change is planted at")
    parser.add_argument("--fdr", type=float, help="concept_drift's false discovery rate")
    parser.add_argument("--changes", nargs="+", metavar="KIND:SIZE",
                        help="the planted changes measured (default: every kind at two sizes)")
    parser.add_argument("--out", type=Path, help="write the summary as JSON here")
    args = parser.parse_args()
    cfg = QUICK if args.quick else Config()
    for name, value in (("orders_per_day", args.orders_per_day), ("n_items", args.items),
                        ("seed", args.seed), ("instances", args.instances),
                        ("fdr", args.fdr),
                        ("changes", tuple(args.changes) if args.changes else None)):
        if value is not None:
            cfg = replace(cfg, **{name: value})
    evidently = None if args.no_evidently else evidently_python(args.evidently_venv)
    print(f"load average before: {load_average()}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="basketry-drift-") as tmp:
        summary = run(cfg, evidently, Path(tmp))
    summary["seconds"] = time.perf_counter() - started
    print(f"\n{cfg.n_items:,} items, {cfg.orders_per_day:,} orders a day, "
          f"{cfg.train_days} training days, {cfg.monitor_days} monitored days; "
          f"detectors of {summary['source']}; "
          f"load average after: {load_average()}; {summary['seconds']:.0f} s "
          f"({summary['seconds_ours']:.0f} s without Evidently)")
    if summary["evidently"]:
        print(f"Evidently: {summary['evidently']}")
    print(table(summary))
    print("measured effects (mean over instances):", json.dumps(summary["effects"]))
    print("no-change value / threshold (median, 99th percentile, max):",
          json.dumps(summary["no_change_margins"]))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
