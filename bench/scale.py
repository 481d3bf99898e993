"""Scale benchmark: synthetic long Parquet files of 1M to 10M baskets, read + mine + rules.

The files are drawn as ``basketry generate`` draws them (``SyntheticSpec`` defaults: a
100k-item catalogue with Zipf-Mandelbrot popularity, 500 planted co-purchase patterns,
timestamps over a year; seed 0) and written as long Parquet (one row per basket item:
transaction, item, timestamp). They are cached in ``--dir`` (default
``/tmp/basketry-scale``) and never part of the repository.

Each size then runs end to end in a fresh process: ``read_baskets`` (the file to CSR baskets),
``frequent_itemsets`` (FP-Growth, support 0.0001) and ``association_rules`` (confidence 0.1),
timed separately, with the peak resident set size of the process (imports included) and the
itemset and rule counts. Goal (issue 3): 10M baskets in under 2 minutes and 8 GiB.

    python bench/scale.py                         # 1M, 2M, 5M, 10M
    python bench/scale.py --sizes 1000000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _host import StealMeter  # bench/ is the script's directory

SUPPORT = 0.0001
CONFIDENCE = 0.1
SIZES = (1_000_000, 2_000_000, 5_000_000, 10_000_000)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, n_baskets: int, seed: int) -> None:
    """Draw and write one file (in this process; the caller runs it in a child)."""
    from basketry.data.synthetic import SyntheticSpec
    from basketry.data.synthetic import generate as draw
    from basketry.data.writers import write_baskets

    tmp = path.with_suffix(".tmp")
    write_baskets(draw(SyntheticSpec(n_baskets=n_baskets, seed=seed)), tmp, "long-parquet")
    tmp.rename(path)


def worker(path: Path, support: float, confidence: float) -> dict:
    t0 = time.perf_counter()
    from basketry.data import read_baskets
    from basketry.mining import association_rules, frequent_itemsets

    t1 = time.perf_counter()
    baskets = read_baskets(path)
    t2 = time.perf_counter()
    itemsets = frequent_itemsets(baskets, support)
    t3 = time.perf_counter()
    rules = association_rules(itemsets, min_confidence=confidence)
    t4 = time.perf_counter()
    return {
        "import_s": t1 - t0, "read_s": t2 - t1, "mine_s": t3 - t2, "rules_s": t4 - t3,
        "total_s": t4 - t1, "peak_mb": _peak_mb(), "baskets": baskets.n_baskets,
        "entries": int(baskets.indptr[-1]), "items": baskets.n_items,
        "frequent_items": int((baskets.item_counts() >= itemsets.min_count).sum()),
        "itemsets": len(itemsets), "rules": len(rules),
        "max_len": int(itemsets.lengths.max()) if len(itemsets) else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                        help="comma-separated numbers of baskets")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/basketry-scale"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--support", type=float, default=SUPPORT)
    parser.add_argument("--confidence", type=float, default=CONFIDENCE)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baskets", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.baskets, args.seed)
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.support, args.confidence)))
        return

    args.dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    steal = StealMeter()
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); support "
          f"{args.support}, confidence {args.confidence}; files in {args.dir}")
    header = (f"{'baskets':>11} {'entries':>12} {'file MB':>8} {'read s':>7} {'mine s':>7} "
              f"{'rules s':>7} {'total s':>8} {'peak MB':>8} {'itemsets':>9} {'rules':>9} "
              f"{'x time':>7} {'x peak':>7}")
    print(header)
    print("-" * len(header))
    results = []
    for n in sizes:
        path = args.dir / f"synthetic-{n}-seed{args.seed}.parquet"
        if not path.exists():
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--generate", str(path), "--baskets",
                            str(n), "--seed", str(args.seed)], check=True)
            print(f"  (generated {path.name} in {time.perf_counter() - t:.0f} s)", flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--worker", str(path), "--support", str(args.support),
             "--confidence", str(args.confidence)],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            print(f"{n:>11,} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        r["file_mb"] = path.stat().st_size / 2**20
        results.append(r)
        first = results[0]
        print(f"{r['baskets']:>11,} {r['entries']:>12,} {r['file_mb']:>8.0f} {r['read_s']:>7.2f} "
              f"{r['mine_s']:>7.2f} {r['rules_s']:>7.2f} {r['total_s']:>8.2f} "
              f"{r['peak_mb']:>8.0f} {r['itemsets']:>9,} {r['rules']:>9,} "
              f"{r['total_s'] / first['total_s']:>7.2f} {r['peak_mb'] / first['peak_mb']:>7.2f}",
              flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}; the host's steal time over the run: "
          f"{steal.share():.0%} of a core")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
