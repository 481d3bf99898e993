"""The local engine against the spark engine (Spark's FPGrowth, local[2]) on the same files,
side by side in one run, and where Spark on N executors would pay, from the measured figures.

Both engines run in this process, from the file on disk to the rules basketry saves (the
measures computed): the local engine as ``basketry mine`` runs it (read_baskets, then
AssociationMiner.fit on both cores), the spark engine as ``basketry mine --engine spark``
(one session, started once and timed apart). Spark's figures are split by phase:

- read: Spark reads and validates the file, and the validated baskets come to the driver
  (the dataset profile and fingerprint need them);
- fit: FPGrowth on Spark, the itemsets counted (the mining: Spark mines them lazily);
- collect: the itemsets and their counts to the driver (Arrow);
- rules: basketry's rule generation and measures on the driver.

Every case checks that both engines found the same itemsets and the same rules table. A
"tiny" case (200 baskets) measures Spark's fixed cost per fit (job scheduling), which no
number of executors removes.

    python bench/spark.py                      # the default cases
    python bench/spark.py --only retail-0.001
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _host import StealMeter  # bench/ is the script's directory

DATA = Path(os.environ.get("BASKETRY_SHARED_DATA", Path(__file__).parents[1] / "../shared/data"))

# name -> (file, min support, min confidence)
CASES = {
    "tiny": ("mushroom.dat", 0.9, 0.5),  # the first 200 lines (fixed costs)
    "mushroom-0.25": ("mushroom.dat", 0.25, 0.5),
    "retail-0.001": ("retail.dat", 0.001, 0.1),
    "retail-0.0005": ("retail.dat", 0.0005, 0.1),
    "T10I4D100K-0.001": ("T10I4D100K.dat", 0.001, 0.1),
}


def _tiny(tmp: Path) -> Path:
    out = tmp / "tiny.dat"
    with (DATA / "mushroom.dat").open() as f, out.open("w") as w:
        for _, line in zip(range(200), f, strict=False):
            w.write(line)
    return out


def run_local(path: Path, support: float, confidence: float) -> dict:
    from basketry.data import read_baskets
    from basketry.mining import AssociationMiner

    started = time.perf_counter()
    baskets = read_baskets(path)
    read = time.perf_counter() - started
    miner = AssociationMiner(min_support=support, min_confidence=confidence).fit(baskets)
    table = miner.rules_table()  # the measures, as saving a model computes them
    total = time.perf_counter() - started
    return {"read": read, "mine": total - read, "total": total, "miner": miner,
            "table": table, "entries": int(baskets.indptr[-1]), "baskets": baskets.n_baskets}


def run_spark(engine, path: Path, support: float, confidence: float) -> dict:
    engine.timings.clear()
    started = time.perf_counter()
    data = engine.read(path)
    try:
        miner = engine.miner(frame=data.frame, min_support=support,
                             min_confidence=confidence).fit(data.baskets)
        table = miner.rules_table()
    finally:
        data.release()
    total = time.perf_counter() - started
    phases = dict(engine.timings)
    phases["rules"] = phases.get("rules", 0.0) + (total - sum(phases.values()))
    return {**phases, "total": total, "miner": miner, "table": table}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    cases = {k: v for k, v in CASES.items()
             if not args.only or k in args.only.split(",") or k == "tiny"}

    from basketry.mining.spark import SparkEngine

    steal = StealMeter()
    print(f"load average at start: {load()} ({os.cpu_count()} cores)", flush=True)
    started = time.perf_counter()
    engine = SparkEngine(args.master)
    print(f"Spark session on {args.master} started in {time.perf_counter() - started:.1f} s",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, engine:
        for name, (file, support, confidence) in cases.items():
            path = _tiny(Path(tmp)) if name == "tiny" else DATA / file
            run_spark(engine, path, support, confidence)  # warm: the JVM's JIT, Spark's caches
            run_local(path, support, confidence)
            spark = run_spark(engine, path, support, confidence)
            local = run_local(path, support, confidence)
            same = (spark["miner"].frequent_itemsets_.to_dict()
                    == local["miner"].frequent_itemsets_.to_dict()
                    and spark["table"].equals(local["table"]))
            rows.append((name, local, spark, same))
            print(f"{name}: local {local['total']:.3f} s, spark {spark['total']:.3f} s, "
                  f"same result: {same}", flush=True)
    print(f"load average at end: {load()}; the host's steal time {steal.share():.0%} of a core")
    print()
    print("| case | baskets | entries | itemsets | rules | local read | local mine | local s | "
          "spark read | spark fit | spark collect | spark rules | spark s | spark / local | "
          "same |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, local, spark, same in rows:
        print(f"| {name} | {local['baskets']:,} | {local['entries']:,} | "
              f"{len(local['miner'].frequent_itemsets_):,} | {len(local['table']):,} | "
              f"{local['read']:.3f} | {local['mine']:.3f} | {local['total']:.3f} | "
              f"{spark.get('read', 0):.2f} | {spark.get('fit', 0):.2f} | "
              f"{spark.get('collect', 0):.2f} | {spark.get('rules', 0):.3f} | "
              f"{spark['total']:.2f} | {spark['total'] / local['total']:.0f}x | "
              f"{'yes' if same else 'NO'} |")
    crossover(rows, args.master)
    return 0 if all(same for *_, same in rows) else 1


def crossover(rows: list, master: str) -> None:
    """Where Spark on N executors would pay, from the figures above: only Spark's fit divides
    by the executors; the read to the driver, the collect, the rules and the fixed cost of a
    job do not."""
    tiny = next(spark for name, _, spark, _ in rows if name == "tiny")
    fixed = tiny["fit"]
    print()
    print(f"fixed cost of a Spark fit (the tiny case, 200 baskets): {fixed:.2f} s")
    cores = 2 if master == "local[2]" else os.cpu_count() or 2
    for name, local, spark, _ in rows:
        if name == "tiny":
            continue
        work = max(spark["fit"] - fixed, 0.0) * cores  # core-seconds of FPGrowth's mining
        serial = spark["read"] + spark["collect"] + spark["rules"] + fixed
        per_entry_spark = work / local["entries"]
        per_entry_local = local["mine"] * 2 / local["entries"]  # the local engine uses 2 cores
        ratio = per_entry_spark / per_entry_local
        print(f"{name}: Spark's mining {work:.2f} core-s ({per_entry_spark * 1e9:.0f} ns an "
              f"entry) against the local engine's {local['mine'] * 2:.3f} core-s "
              f"({per_entry_local * 1e9:.0f} ns an entry): {ratio:.0f}x the work; the parts "
              f"no executor shortens take {serial:.2f} s, "
              f"{serial / local['total']:.0f}x the local engine's whole run")


if __name__ == "__main__":
    sys.exit(main())
