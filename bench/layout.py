"""Shelf layout benchmark (issue 17): the plan's quality on held-out baskets, the moves' gain
within a budget, and the time and memory at scale.

    python bench/layout.py quality     # every weighting on every data set (+ planted groups)
    python bench/layout.py moves       # a current layout, 10% of products moved
    python bench/layout.py scale       # 20k products, rules mined from 10M baskets
    python bench/layout.py all

Data: ``/work/shared/data`` (``BASKETRY_DATA`` overrides): groceries.csv (random 20% test),
online_retail.parquet (the online-retail preset, labels from Description; the last 30 days as
test), retail.dat (random 20% test), and a generated history with planted product groups where
the right answer is known (adjusted Rand index and purity of the aisles against the groups).
None of these files has product categories, so there is no category-only baseline here.
Figures with the load average at the start and end of each part.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("BASKETRY_DATA", "/work/shared/data"))
WEIGHTINGS = ("excess", "significant", "count", "lift", "pmi", "jaccard", "confidence")


def _load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def datasets(only: list[str] | None = None):
    """(name, train baskets, test baskets, aisles, capacity, truth or None) per data set."""
    from basketry.data import read_baskets
    from basketry.data.synthetic import SyntheticSpec, generate
    from basketry.training.split import random_split, time_split

    wanted = only or ["groceries", "online_retail", "retail", "planted"]
    if "groceries" in wanted:
        s = random_split(read_baskets(DATA / "groceries.csv"), 0.2, seed=0)
        yield "groceries", s.train, s.test, 10, None, None
    if "online_retail" in wanted:
        s = time_split(read_baskets(DATA / "online_retail.parquet", preset="online-retail"), 30)
        yield "online_retail", s.train, s.test, 40, None, None
    if "retail" in wanted:
        s = random_split(read_baskets(DATA / "retail.dat"), 0.2, seed=0)
        yield "retail", s.train, s.test, 100, None, None
    if "planted" in wanted:
        b = generate(SyntheticSpec(n_baskets=50_000, n_items=2_000, n_patterns=50, groups=40,
                                   group_rate=0.5, seed=3))
        truth = {item: k for k, group in enumerate(b.report["groups"]) for item in group}
        s = random_split(b, 0.2, seed=0)
        yield "planted", s.train, s.test, 40, 50, truth


def adjusted_rand(a: list[int], b: list[int]) -> float:
    """Adjusted Rand index of two labellings (Hubert and Arabie)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    n = len(a)
    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / (n * (n - 1) / 2)
    top = (rows + cols) / 2
    return (index - expected) / (top - expected) if top != expected else 1.0


def purity(truth: list[int], got: list[int]) -> float:
    """Share of products whose aisle's most common planted group is their own."""
    table: dict[int, dict[int, int]] = {}
    for t, g in zip(truth, got, strict=True):
        table.setdefault(g, {}).setdefault(t, 0)
        table[g][t] += 1
    return sum(max(c.values()) for c in table.values()) / len(truth)


def recovery(plan, truth: dict[str, int]) -> tuple[float, float]:
    got = {s.item: s.aisle for s in plan.slots()}
    items = sorted(i for i in truth if i in got)
    t, g = [truth[i] for i in items], [got[i] for i in items]
    return adjusted_rand(t, g), purity(t, g)


def quality(only: list[str] | None, weightings: tuple[str, ...]) -> list[dict]:
    from basketry.layout import LayoutParams, pairs_from_baskets, plan_layout

    rows = []
    print(f"## quality ({_load()})")
    for name, train, test, aisles, capacity, truth in datasets(only):
        pairs = pairs_from_baskets(train)
        print(f"{name}: {pairs.n_items:,} products, {pairs.i.shape[0]:,} pairs, {aisles} aisles, "
              f"{train.n_baskets:,} train / {test.n_baskets:,} test baskets")
        for w in weightings:
            started = time.perf_counter()
            plan = plan_layout(pairs, LayoutParams(aisles=aisles, capacity=capacity, weighting=w),
                               test_baskets=test)
            seconds = time.perf_counter() - started
            ev = plan.evaluation
            row = {"data": name, "weighting": w, "seconds": round(seconds, 2),
                   "same_aisle": ev["layout"]["same_aisle"],
                   "random": ev["random"]["same_aisle"],
                   "random_sd": ev["random"]["same_aisle_sd"],
                   "ratio": ev["same_aisle_vs_random"],
                   "same_or_adjacent": ev["layout"]["same_or_adjacent"],
                   "random_adjacent": ev["random"]["same_or_adjacent"]}
            if truth is not None:
                row["ari"], row["purity"] = recovery(plan, truth)
            rows.append(row)
            extra = (f" ARI {row['ari']:.3f} purity {row['purity']:.3f}" if truth else "")
            print(f"  {w:12s} same aisle {row['same_aisle']:.4f} vs random {row['random']:.4f} "
                  f"± {row['random_sd']:.4f} = {row['ratio']:.2f}x; same or adjacent "
                  f"{row['same_or_adjacent']:.4f} (random {row['random_adjacent']:.4f}); "
                  f"{seconds:.1f} s{extra}", flush=True)
    print(f"({_load()})")
    return rows


def moves(only: list[str] | None, weighting: str | None, budget: str = "10%") -> list[dict]:
    from basketry.layout import Current, LayoutParams, pairs_from_baskets, plan_layout
    from basketry.layout.affinity import DEFAULT_WEIGHTING

    w = weighting or DEFAULT_WEIGHTING
    rows = []
    print(f"## moves, budget {budget} ({_load()}), weighting {w}")
    for name, train, test, aisles, capacity, _truth in datasets(only):
        pairs = pairs_from_baskets(train)
        full = plan_layout(pairs, LayoutParams(aisles=aisles, capacity=capacity, weighting=w),
                           test_baskets=test)
        caps = [a.capacity for a in full.aisles]
        currents: dict[str, Current] = {}
        # a random layout with the plan's aisle sizes
        rng = np.random.default_rng(1)
        items = [str(x) for x in pairs.items]
        order = rng.permutation(len(items))
        sizes = [len(a.items) for a in full.aisles]
        aisle_of, position_of, k = {}, {}, 0
        for a, size in enumerate(sizes):
            for p in range(size):
                aisle_of[items[order[k]]], position_of[items[order[k]]] = a + 1, p + 1
                k += 1
        currents["random"] = Current(aisle_of, position_of, "random layout")
        # an older layout: the plan built from the first half of the training baskets
        half = train.subset(np.arange(train.n_baskets) < train.n_baskets // 2)
        old_pairs = pairs_from_baskets(half)
        old = plan_layout(old_pairs, LayoutParams(capacities=tuple(caps), weighting=w)) \
            if old_pairs.n_items <= sum(caps) else None
        if old is not None:
            known = set(items)
            old_aisle = {s.item: s.aisle for s in old.slots() if s.item in known}
            old_pos = {s.item: s.position for s in old.slots() if s.item in known}
            currents["older half"] = Current(old_aisle, old_pos, "older layout")
        for label, current in currents.items():
            started = time.perf_counter()
            plan = plan_layout(pairs, LayoutParams(capacities=tuple(caps), weighting=w,
                                                   max_moves=budget),
                               current=current, test_baskets=test)
            seconds = time.perf_counter() - started
            ev = plan.evaluation
            before, after = ev["current"]["same_aisle"], ev["layout"]["same_aisle"]
            row = {"data": name, "current": label, "moves": len(plan.moves),
                   "budget": plan.params["budget"], "seconds": round(seconds, 2),
                   "objective_before": plan.params["objective_before"],
                   "objective_after": plan.params["objective_after"],
                   "same_aisle_before": before, "same_aisle_after": after,
                   "relative_gain": after / before - 1 if before else None,
                   "adjacent_before": ev["current"]["same_or_adjacent"],
                   "adjacent_after": ev["layout"]["same_or_adjacent"],
                   "full_relayout": full.evaluation["layout"]["same_aisle"]}
            rows.append(row)
            print(f"  {name:13s} from {label:10s}: {row['moves']:,} moves (budget "
                  f"{row['budget']:,}) held-out same aisle {before:.4f} -> {after:.4f} "
                  f"({100 * (row['relative_gain'] or 0):+.1f}%), same or adjacent "
                  f"{row['adjacent_before']:.4f} -> {row['adjacent_after']:.4f}; full re-layout "
                  f"{row['full_relayout']:.4f}; {seconds:.1f} s", flush=True)
    print(f"({_load()})")
    return rows


def _scale_child(model_dir: str, aisles: int, weighting: str | None) -> None:
    """In a fresh process: the plan from the model, timed, with the peak RSS."""
    from basketry.layout import LayoutParams, pairs_from_model, plan_layout
    from basketry.layout.affinity import DEFAULT_WEIGHTING

    started = time.perf_counter()
    pairs = pairs_from_model(model_dir)
    loaded = time.perf_counter() - started
    plan = plan_layout(pairs, LayoutParams(aisles=aisles, weighting=weighting
                                           or DEFAULT_WEIGHTING))
    total = time.perf_counter() - started
    print(json.dumps({"products": pairs.n_items, "pair_rules": int(pairs.i.shape[0]),
                      "aisles": plan.n_aisles, "load_s": round(loaded, 2),
                      "plan_s": round(total, 2), "peak_rss_mb": round(_peak_mb())}))


def scale(n_baskets: int, n_items: int, support: float, aisles: int,
          weighting: str | None, workdir: Path) -> dict:
    print(f"## scale: {n_items:,} products, {n_baskets:,} baskets ({_load()})")
    model_dir = workdir / f"model-{n_baskets}-{n_items}-{support}"
    if not model_dir.exists():
        code = (
            "import sys, time, json, resource\n"
            "from basketry.data.synthetic import SyntheticSpec, generate\n"
            "from basketry.mining import AssociationMiner\n"
            "from basketry.training.artifact import save_model\n"
            "t = time.perf_counter()\n"
            f"b = generate(SyntheticSpec(n_baskets={n_baskets}, n_items={n_items}, groups=400,"
            " group_size=10, group_rate=0.5, seed=0))\n"
            "g = time.perf_counter() - t\n"
            f"m = AssociationMiner(min_support={support}, min_confidence=0.01).fit(b)\n"
            f"save_model({str(model_dir)!r}, m, b)\n"
            "print(json.dumps({'generate_s': round(g, 1), 'mine_s': round(time.perf_counter()"
            " - t - g, 1), 'rules': len(m.rules_arrays_), 'peak_rss_mb': round(resource."
            "getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))\n")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True)
        print("  model:", out.stdout.strip().splitlines()[-1])
    out = subprocess.run([sys.executable, __file__, "_scale_child", str(model_dir), str(aisles),
                          weighting or ""], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  layout: {result} ({_load()})")
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_scale_child":
        _scale_child(sys.argv[2], int(sys.argv[3]), sys.argv[4] or None)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["quality", "moves", "scale", "all"])
    ap.add_argument("--data", nargs="*", help="groceries online_retail retail planted")
    ap.add_argument("--weightings", nargs="*", default=list(WEIGHTINGS))
    ap.add_argument("--weighting", help="the weighting of moves and scale (default: the "
                                        "package's default)")
    ap.add_argument("--baskets", type=int, default=10_000_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--support", type=float, default=0.00005)
    ap.add_argument("--aisles", type=int, default=200)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "basketry-layout")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    figures: dict[str, object] = {"load_start": os.getloadavg()}
    if args.part in ("quality", "all"):
        figures["quality"] = quality(args.data, tuple(args.weightings))
    if args.part in ("moves", "all"):
        figures["moves"] = moves(args.data, args.weighting)
    if args.part in ("scale", "all"):
        args.dir.mkdir(parents=True, exist_ok=True)
        figures["scale"] = scale(args.baskets, args.items, args.support, args.aisles,
                                 args.weighting, args.dir)
    figures["load_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
