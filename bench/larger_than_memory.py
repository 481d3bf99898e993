"""Data larger than memory: `basketry mine` on a directory of date-partitioned Parquet files.

Draws a long-format data set (one row per basket item: transaction int64, item string,
timestamp) of ``--rows`` rows over a ``--items`` catalogue, written day by day as hive
partitions (``date=2024-01-01/part-0.parquet``, row groups of 256k rows, zstd) into a temporary
directory outside the repository (``--tmp``, default the system's), removed afterwards. The
drawing streams too: one day at a time in memory, never the whole data set.

The data: Zipf-Mandelbrot item popularity (``1 / (rank + 10)``, as ``basketry generate``),
1 + Poisson(7) random items per basket, 500 planted patterns of 2-5 items in 30% of the
baskets, all from one seed (PCG64); items repeated within a basket are left in (the reader
merges them).

Then ``basketry mine DIR --min-support S`` runs as a separate process; the bench records its
peak resident set size (``os.wait4``: that child's own maximum), wall time per phase (reading:
until the CLI prints the read report; mining and saving: until it prints the rule count) and the
rule count, with its CPU time (user + system: less sensitive than wall time to a busy machine)
and the load average before and after.

    python bench/larger_than_memory.py                        # 100M rows, then 10M
    python bench/larger_than_memory.py --rows 10000000 --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = (100_000_000, 10_000_000)
ITEMS = 50_000
DAYS = 100
SUPPORT = "0.00003"
ROW_GROUP = 1 << 18
N_PATTERNS = 500
PATTERN_RATE = 0.3
MEAN_RANDOM = 7.0  # random items per basket: 1 + Poisson(7)


def _catalogue(n_items: int, seed: int) -> tuple[np.ndarray, list[np.ndarray], pa.Array]:
    """Item popularity (cumulative), the planted patterns and the item strings."""
    rng = np.random.default_rng([seed, 0])
    weights = 1.0 / (np.arange(1, n_items + 1) + 10.0)
    cdf = np.cumsum(weights / weights.sum())
    order = rng.permutation(n_items)  # popularity rank -> item code
    cdf_items = (cdf, order)
    patterns = []
    for _ in range(N_PATTERNS):
        size = int(rng.integers(2, 6))
        ranks = np.minimum(np.searchsorted(cdf, rng.random(size)), n_items - 1)
        patterns.append(np.unique(order[ranks]))
    names = pa.array([f"item-{i:05d}" for i in range(n_items)], pa.string())
    return cdf_items, patterns, names


def _day(rng: np.random.Generator, n_baskets: int, first_id: int, day: dt.date,
         cdf_items: tuple[np.ndarray, np.ndarray], patterns: list[np.ndarray],
         names: pa.Array) -> pa.Table:
    """One day's rows, drawn vectorised."""
    cdf, order = cdf_items
    sizes = 1 + rng.poisson(MEAN_RANDOM, n_baskets)
    n = int(sizes.sum())
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), len(order) - 1)
    items = order[ranks].astype(np.int32)
    basket = np.repeat(np.arange(n_baskets, dtype=np.int64), sizes)
    # planted patterns: a share of the baskets gets one whole pattern
    with_pattern = np.flatnonzero(rng.random(n_baskets) < PATTERN_RATE)
    which = rng.integers(0, len(patterns), with_pattern.shape[0])
    lengths = np.array([len(patterns[k]) for k in which], dtype=np.int64)
    flat = np.concatenate([patterns[k] for k in which]) if len(which) else np.zeros(0, np.int64)
    items = np.concatenate([items, flat.astype(np.int32)])
    basket = np.concatenate([basket, np.repeat(with_pattern, lengths)])
    order_rows = np.argsort(basket, kind="stable")
    basket, items = basket[order_rows], items[order_rows]
    start = np.datetime64(day, "s").astype(np.int64)
    seconds = np.sort(rng.integers(0, 86_400, n_baskets)) + start
    return pa.table({
        "transaction_id": pa.array(basket + first_id),
        "item": pa.DictionaryArray.from_arrays(pa.array(items), names),
        "timestamp": pa.array(seconds[basket].astype("datetime64[s]")),
    })


def generate(root: Path, rows: int, n_items: int, days: int, seed: int) -> dict:
    """Write about ``rows`` rows (whole baskets) as ``days`` partitions; one day in memory."""
    cdf_items, patterns, names = _catalogue(n_items, seed)
    per_basket = 1 + MEAN_RANDOM + PATTERN_RATE * np.mean([len(p) for p in patterns])
    baskets_per_day = max(1, round(rows / days / per_basket))
    written = 0
    first_id = 0
    for d in range(days):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=d)
        rng = np.random.default_rng([seed, 1, d])
        table = _day(rng, baskets_per_day, first_id, day, cdf_items, patterns, names)
        part = root / f"date={day.isoformat()}"
        part.mkdir(parents=True)
        pq.write_table(table, part / "part-0.parquet", row_group_size=ROW_GROUP,
                       compression="zstd")
        written += table.num_rows
        first_id += baskets_per_day
    size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    return {"rows": written, "baskets_drawn": first_id, "files": days, "dir_mb": size / 2**20}


def mine(root: Path, out: Path, support: str) -> dict:
    """``basketry mine`` in a child process: its peak RSS, phase times and rule count."""
    basketry = Path(sys.executable).with_name("basketry")
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [str(basketry), "mine", str(root), "--out", str(out), "--min-support", support],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    assert child.stdout is not None
    read_s = None
    lines = []
    for line in child.stdout:
        lines.append(line.rstrip())
        if read_s is None:
            read_s = time.perf_counter() - t0  # the read report: reading is over
    _, status, usage = os.wait4(child.pid, 0)
    total_s = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    text = "\n".join(lines)
    if child.returncode != 0:
        raise SystemExit(f"basketry mine failed ({child.returncode}):\n{text}")
    found = re.search(r"mined ([\d,]+) frequent itemsets and ([\d,]+) rules \(min count ([\d,]+)"
                      r" of ([\d,]+) baskets\)", text)
    assert found, text
    itemsets, rules, min_count, baskets = (int(g.replace(",", "")) for g in found.groups())
    return {
        "read_s": read_s, "mine_and_save_s": total_s - (read_s or 0.0), "total_s": total_s,
        "peak_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime,
        "itemsets": itemsets, "rules": rules,
        "min_count": min_count, "baskets": baskets, "output": text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(str(r) for r in ROWS),
                        help="comma-separated row counts, one run each")
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--support", default=SUPPORT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", type=Path, default=None, help="where the data set is drawn")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results = []
    for rows in (int(r) for r in args.rows.split(",") if r.strip()):
        work = Path(tempfile.mkdtemp(prefix="basketry-ltm-", dir=args.tmp))
        try:
            load = os.getloadavg()[0]
            t = time.perf_counter()
            data = generate(work / "data", rows, args.items, args.days, args.seed)
            gen_s = time.perf_counter() - t
            print(f"{rows:,} rows: drew {data['rows']:,} rows, {data['files']} files, "
                  f"{data['dir_mb']:.0f} MB in {gen_s:.0f} s (load {load:.2f})", flush=True)
            load = os.getloadavg()[0]
            r = mine(work / "data", work / "model", args.support)
            r.update(data, generate_s=gen_s, load_start=load, load_end=os.getloadavg()[0],
                     support=args.support, items=args.items)
            print(r.pop("output"))
            print(json.dumps(r), flush=True)
            results.append(r)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
