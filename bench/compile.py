"""Start-up cost of the compiled kernels: the same job in fresh processes, first with the kernels
compiled ahead of time at install (no numba in the process), then with numba's JIT kernels
(``BASKETRY_KERNELS=jit``): once with an empty numba cache (every kernel compiled), then twice
more with that cache filled (kernels loaded).

The job is read + mine + rules of one data set (default: retail.dat at support 0.001,
confidence 0.1, plus a long Parquet read so that the ingest kernels are in too). The cache
goes to a scratch directory through ``NUMBA_CACHE_DIR``, so the user's cache is not touched.

    python bench/compile.py
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

DATA = Path(os.environ.get("BASKETRY_SHARED_DATA", Path(__file__).parents[1] / "../shared/data"))

_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from basketry.data import read_baskets
from basketry.mining import AssociationMiner
t1 = time.perf_counter()
b = read_baskets(sys.argv[1])
miner = AssociationMiner(min_support=float(sys.argv[2]), min_confidence=float(sys.argv[3]))
miner.fit(b)
n = len(miner.rules_arrays_)
miner.rules_arrays_.measures["p_value"], miner.rules_arrays_.measures["lift"]
t2 = time.perf_counter()
read_baskets(sys.argv[4])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "job_s": t2 - t1, "parquet_s": t3 - t2, "rules": n,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "numba": "numba" in sys.modules}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DATA / "retail.dat")
    parser.add_argument("--support", type=float, default=0.001)
    parser.add_argument("--confidence", type=float, default=0.1)
    parser.add_argument("--warm-runs", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="basketry-compile-"))
    try:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = scratch / "long.parquet"
        rng = np.random.default_rng(0)
        pq.write_table(pa.table({"transaction": np.repeat(np.arange(1000), 3),
                                 "item": [f"i{x}" for x in rng.integers(0, 50, 3000)]}),
                       parquet)
        base = {k: v for k, v in os.environ.items() if k != "BASKETRY_KERNELS"}
        base["NUMBA_CACHE_DIR"] = str(scratch / "cache")
        jit = dict(base, BASKETRY_KERNELS="jit")
        print(f"load average {os.getloadavg()[0]:.2f}; {args.file.name} support {args.support}")
        print(f"{'run':<22} {'import s':>9} {'job s':>7} {'parquet s':>10} {'peak MB':>8}  numba")
        runs = [("ahead of time", base), ("JIT, empty cache", jit)] + [
            (f"JIT, warm {k + 1}", jit) for k in range(args.warm_runs)]
        for run, env in runs:
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(args.file), str(args.support),
                 str(args.confidence), str(parquet)],
                check=True, capture_output=True, text=True, env=env,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{run:<22} {r['import_s']:>9.2f} {r['job_s']:>7.2f} {r['parquet_s']:>10.2f} "
                  f"{r['peak_mb']:>8.0f}  {'yes' if r['numba'] else 'no':<5}  "
                  f"(process {time.perf_counter() - t:.1f} s)", flush=True)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
