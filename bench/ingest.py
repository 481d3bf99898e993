"""Ingest benchmark: basketry's read_baskets vs a plain pandas read of the same long file.

Generates a synthetic long table (one row per (transaction, item); string transaction ids and
string items drawn from a catalogue with Zipf-like popularity) as Parquet and as CSV in a
scratch directory, then reads each file in a fresh subprocess, once with
``basketry.data.read_baskets`` and once with ``pandas.read_parquet`` / ``pandas.read_csv``,
and prints wall time and peak RSS (``ru_maxrss``; also net of the interpreter and imports) with
the ratios basketry / pandas.

    python bench/ingest.py                        # 5M transactions x 10 items = 50M rows
    python bench/ingest.py --transactions 100000  # small
    python bench/ingest.py --formats parquet --keep

Generated files are not part of the repository; they go to --dir (default: a directory under
/tmp) and are deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
fmt, tool, path = sys.argv[1:4]
if tool == "basketry":
    from basketry.data import read_baskets
else:
    import pandas as pd
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if tool == "basketry":
    b = read_baskets(path)
    shape = [b.n_baskets, b.n_items, int(b.indptr[-1])]
elif fmt == "parquet":
    df = pd.read_parquet(path)
    shape = list(df.shape)
else:
    df = pd.read_csv(path)
    shape = list(df.shape)
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_mb": peak / 1024, "base_mb": base / 1024,
                  "shape": shape}))
"""


def generate(
    directory: Path, n_tx: int, per_tx: int, catalogue: int, formats: list[str], seed: int
) -> dict[str, Path]:
    """Write the long table in batches (bounded memory); return the files by format."""
    rng = np.random.default_rng(seed)
    names = pa.array([f"SKU-{i:07d}" for i in range(catalogue)])
    # Zipf-like popularity: P(rank r) ~ 1 / (r + 10)
    weights = 1.0 / (np.arange(catalogue) + 10.0)
    cdf = np.cumsum(weights / weights.sum())
    paths = {f: directory / f"long.{f}" for f in formats}
    schema = pa.schema([("transaction", pa.string()), ("item", pa.string())])
    pw = pq.ParquetWriter(paths["parquet"], schema) if "parquet" in paths else None
    cw = pacsv.CSVWriter(paths["csv"], schema) if "csv" in paths else None
    batch_tx = 500_000
    for lo in range(0, n_tx, batch_tx):
        hi = min(lo + batch_tx, n_tx)
        tx = np.repeat(np.arange(lo, hi, dtype=np.int64), per_tx)
        tx_str = pc.binary_join_element_wise("T", pc.cast(pa.array(tx), pa.string()), "")
        item_idx = np.searchsorted(cdf, rng.random(tx.shape[0])).clip(0, catalogue - 1)
        items = names.take(pa.array(item_idx))
        table = pa.table({"transaction": tx_str, "item": items}, schema=schema)
        if pw is not None:
            pw.write_table(table, row_group_size=1 << 20)
        if cw is not None:
            cw.write_table(table)
    if pw is not None:
        pw.close()
    if cw is not None:
        cw.close()
    return paths


def measure(fmt: str, tool: str, path: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, fmt, tool, str(path)],
        check=True, capture_output=True, text=True, env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5_000_000)
    parser.add_argument("--items-per-transaction", type=int, default=10)
    parser.add_argument("--catalogue", type=int, default=100_000)
    parser.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet,csv")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    directory = args.dir or Path(tempfile.mkdtemp(prefix="basketry-ingest-"))
    directory.mkdir(parents=True, exist_ok=True)
    rows = args.transactions * args.items_per_transaction
    try:
        t = time.perf_counter()
        paths = generate(directory, args.transactions, args.items_per_transaction,
                         args.catalogue, formats, args.seed)
        print(f"generated {rows:,} rows ({args.transactions:,} transactions x "
              f"{args.items_per_transaction}, catalogue {args.catalogue:,}) in "
              f"{time.perf_counter() - t:.1f} s: "
              + ", ".join(f"{p.name} {p.stat().st_size / 1e6:,.0f} MB" for p in paths.values()))
        header = (f"{'format':8} {'reader':10} {'time s':>8} {'peak RSS MB':>12} "
                  f"{'net MB':>8}  result")
        print(header)
        print("-" * len(header))
        for fmt, path in paths.items():
            res = {tool: measure(fmt, tool, path) for tool in ("basketry", "pandas")}
            for tool, r in res.items():
                net = r["peak_mb"] - r["base_mb"]
                print(f"{fmt:8} {tool:10} {r['seconds']:8.2f} {r['peak_mb']:12.0f} "
                      f"{net:8.0f}  {r['shape']}")
            b, p = res["basketry"], res["pandas"]
            p_net = max(p["peak_mb"] - p["base_mb"], 1.0)
            print(f"{fmt:8} {'ratio b/p':10} {b['seconds'] / p['seconds']:8.2f} "
                  f"{b['peak_mb'] / p['peak_mb']:12.2f} "
                  f"{(b['peak_mb'] - b['base_mb']) / p_net:8.2f}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
        elif not args.keep:
            for f in formats:
                (directory / f"long.{f}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
