"""Shelf layout benchmark (issue 17): the plan's quality on held-out baskets, the moves' gain
within a budget, and the time and memory at scale.

    python bench/layout.py quality     # every weighting on every data set (+ planted groups)
    python bench/layout.py moves       # a current layout, 10% of products moved
    python bench/layout.py scale       # 20k products, rules mined from 10M baskets
    python bench/layout.py bound       # how high the same-aisle share can go for these aisles
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


def quality(only: list[str] | None, weightings: tuple[str, ...],
            aisle_counts: dict[str, list[int]], refines: tuple[str, ...]) -> list[dict]:
    """Each weighting (communities) x refinement objective x aisle count, on each data set."""
    from basketry.layout import LayoutParams, pairs_from_baskets, plan_layout

    rows = []
    print(f"## quality ({_load()})")
    for name, train, test, aisles, capacity, truth in datasets(only):
        pairs = pairs_from_baskets(train)
        print(f"{name}: {pairs.n_items:,} products, {pairs.i.shape[0]:,} pairs, "
              f"{train.n_baskets:,} train / {test.n_baskets:,} test baskets")
        for n_aisles in aisle_counts.get(name, [aisles]):
            for w in weightings:
                for refine in refines:
                    rw = None if refine in ("same", "none") else refine
                    moves = 0 if refine == "none" else LayoutParams.refine_moves
                    started = time.perf_counter()
                    params = LayoutParams(aisles=n_aisles, capacity=capacity, weighting=w,
                                          refine_weighting=rw, refine_moves=moves)
                    plan = plan_layout(pairs, params, test_baskets=test)
                    seconds = time.perf_counter() - started
                    rows.append(_quality_row(name, n_aisles, w, refine, plan, seconds, truth))
    print(f"({_load()})")
    return rows


def _quality_row(name: str, n_aisles: int, w: str, refine: str, plan, seconds: float,
                 truth: dict[str, int] | None) -> dict:
    ev = plan.evaluation
    rnd = ev["random"]
    row = {"data": name, "aisles": n_aisles, "weighting": w, "refine": refine,
           "seconds": round(seconds, 2), "same_aisle": ev["layout"]["same_aisle"],
           "random": rnd["same_aisle"], "random_sd": rnd["same_aisle_sd"],
           "random_expected": rnd["same_aisle_expected"], "ratio": ev["same_aisle_vs_random"],
           "ratio_expected": ev["layout"]["same_aisle"] / rnd["same_aisle_expected"],
           "same_or_adjacent": ev["layout"]["same_or_adjacent"],
           "random_adjacent": rnd["same_or_adjacent_expected"],
           "refine_steps": plan.params.get("refine_steps")}
    if truth is not None:
        row["ari"], row["purity"] = recovery(plan, truth)
    extra = (f" ARI {row['ari']:.3f} purity {row['purity']:.3f}" if truth else "")
    print(f"  {n_aisles:4d} aisles {w:8s} refine {refine:12s} same aisle {row['same_aisle']:.4f} "
          f"vs random {row['random']:.4f} ± {row['random_sd']:.4f} = {row['ratio']:.2f}x "
          f"(exact random {row['random_expected']:.4f}: {row['ratio_expected']:.2f}x); same or "
          f"adjacent {row['same_or_adjacent']:.4f} (random {row['random_adjacent']:.4f}); "
          f"{seconds:.1f} s{extra}", flush=True)
    return row


def top_partner_bound(i: np.ndarray, j: np.ndarray, w: np.ndarray, n: int, cap: int) -> float:
    """An upper bound of the same-aisle share of pairs (i, j, w) in aisles of at most ``cap``
    products: a product shares an aisle with at most cap - 1 others, so at best with its
    cap - 1 heaviest partners; each pair is counted from both ends, hence the half."""
    m = sp_sym(i, j, w, n)
    best = 0.0
    for r in range(n):
        d = m.data[m.indptr[r]:m.indptr[r + 1]]
        if d.size > cap - 1:
            d = np.partition(d, d.size - (cap - 1))[d.size - (cap - 1):]
        best += float(d.sum())
    return 0.5 * best / float(w.sum())


def anneal(w, aisle: np.ndarray, iterations: int, seed: int = 0) -> np.ndarray:
    """Simulated annealing over swaps on a dense weight matrix (small stores only), to see how
    far the plan's local search stops from what a much slower search finds."""
    rng = np.random.default_rng(seed)
    wd = w.toarray()
    n, n_aisles = wd.shape[0], int(aisle.max()) + 1
    aisle = aisle.copy()
    z = np.zeros((n, n_aisles))
    z[np.arange(n), aisle] = 1.0
    m = wd @ z
    t0 = 0.02 * wd.sum() / 2 / n
    picks = rng.integers(n, size=(iterations, 2))
    coins = rng.random(iterations)
    for t in range(iterations):
        i, k = picks[t]
        a, b = aisle[i], aisle[k]
        if a == b:
            continue
        g = m[i, b] - m[i, a] + m[k, a] - m[k, b] - 2.0 * wd[i, k]
        temp = t0 * (1.0 - t / iterations) + 1e-12
        if g > 0 or coins[t] < np.exp(g / temp):
            m[:, a] += wd[:, k] - wd[:, i]
            m[:, b] += wd[:, i] - wd[:, k]
            aisle[i], aisle[k] = b, a
    return aisle


def bound(only: list[str] | None, aisle_counts: dict[str, list[int]], iterations: int) -> list:
    """How far 3x random can be reached: the bound from each product's heaviest partners (on
    the training pairs, and on the held-out pairs themselves), and simulated annealing on the
    training counts started from the plan."""
    from basketry.layout import LayoutParams, build_affinity, pairs_from_baskets, plan_layout
    from basketry.layout.evaluate import expected_random_shares, held_out_pairs, shares
    from basketry.layout.refine import refine_aisles

    rows = []
    print(f"## bound ({_load()})")
    for name, train, test, aisles, capacity, _truth in datasets(only):
        pairs = pairs_from_baskets(train, min_pair_count=1)
        n = pairs.n_items
        index = {str(x): k for k, x in enumerate(pairs.items)}
        held = held_out_pairs(test, index)
        for n_aisles in aisle_counts.get(name, [aisles]):
            plan = plan_layout(pairs, LayoutParams(aisles=n_aisles, capacity=capacity))
            aisle = np.array([plan.slot(str(x)).aisle - 1 for x in pairs.items])
            cap = max(a.capacity for a in plan.aisles)
            rnd = expected_random_shares(held, aisle)[0]
            row = {"data": name, "aisles": n_aisles, "capacity": cap, "random": rnd,
                   "plan": shares(held, aisle)[0],
                   "bound_train": top_partner_bound(pairs.i, pairs.j,
                                                    pairs.pair.astype(np.float64), n, cap),
                   "bound_held_out": top_partner_bound(held.i, held.j, held.count, n, cap)}
            if iterations and n <= 5000:
                counts = build_affinity(pairs, "count").weights
                started = time.perf_counter()
                annealed = anneal(counts, aisle, iterations)
                annealed = refine_aisles(counts, annealed, np.array([a.capacity for a in
                                                                     plan.aisles]),
                                         np.ones(n, dtype=bool)).aisle
                upper = sp_upper(counts)
                # the same search on the held-out pairs themselves: what a layout that knew
                # the test baskets would reach
                oracle_w = sp_sym(held.i, held.j, held.count, n)
                oracle = anneal(oracle_w, aisle, iterations)
                oracle = refine_aisles(oracle_w, oracle, np.array([a.capacity for a in
                                                                   plan.aisles]),
                                       np.ones(n, dtype=bool)).aisle
                row["oracle"] = shares(held, oracle)[0]
                row |= {"annealed": shares(held, annealed)[0],
                        "plan_train": _share(upper, aisle), "annealed_train": _share(upper,
                                                                                      annealed),
                        "anneal_s": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(f"  {name} {n_aisles} aisles (<= {cap}): random {rnd:.4f}; plan "
                  f"{row['plan']:.4f} ({row['plan'] / rnd:.2f}x); bound from the training pairs "
                  f"{row['bound_train']:.3f} ({row['bound_train'] / rnd:.2f}x), from the "
                  f"held-out pairs {row['bound_held_out']:.3f} "
                  f"({row['bound_held_out'] / rnd:.2f}x)", flush=True)
            if "annealed" in row:
                print(f"    annealing ({iterations:,} swaps tried, {row['anneal_s']} s): "
                      f"training share {row['plan_train']:.4f} -> {row['annealed_train']:.4f}, "
                      f"held-out {row['plan']:.4f} -> {row['annealed']:.4f} "
                      f"({row['annealed'] / rnd:.2f}x); the same search on the held-out pairs "
                      f"themselves {row['oracle']:.4f} ({row['oracle'] / rnd:.2f}x)", flush=True)
    print(f"({_load()})")
    return rows


def sp_sym(i: np.ndarray, j: np.ndarray, w: np.ndarray, n: int):
    import scipy.sparse as sp

    m = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    m.sum_duplicates()
    return m


def sp_upper(w):
    import scipy.sparse as sp

    return sp.triu(w, k=1).tocoo()


def _share(upper, aisle: np.ndarray) -> float:
    return float(upper.data @ (aisle[upper.row] == aisle[upper.col])) / float(upper.data.sum())


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
    ap.add_argument("part", choices=["quality", "moves", "scale", "bound", "all"])
    ap.add_argument("--data", nargs="*", help="groceries online_retail retail planted")
    ap.add_argument("--weightings", nargs="*", default=list(WEIGHTINGS))
    ap.add_argument("--refine", nargs="*", default=["excess_count"],
                    help="refinement objectives of the full layout: a weighting, 'same' (the "
                         "communities' weighting) or 'none' (no refinement)")
    ap.add_argument("--aisle-counts", nargs="*", default=[], metavar="NAME=A,B",
                    help="aisle counts per data set (default: each set's usual count)")
    ap.add_argument("--anneal", type=int, default=300_000,
                    help="bound: swaps tried by simulated annealing (0: none)")
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
    counts = {k: [int(a) for a in v.split(",")] for k, v in
              (x.split("=", 1) for x in args.aisle_counts)}
    if args.part in ("quality", "all"):
        figures["quality"] = quality(args.data, tuple(args.weightings), counts,
                                     tuple(args.refine))
    if args.part in ("bound", "all"):
        figures["bound"] = bound(args.data, counts, args.anneal)
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
