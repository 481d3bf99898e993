"""Scoring benchmark: time to recommend for one basket against a model of about 100k rules
(retail.dat mined at support 0.0002, confidence 0.1), baskets sampled from the data.

    python bench/scoring.py [--support 0.0002] [--baskets 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from basketry.data import read_baskets
from basketry.mining import AssociationMiner
from basketry.model import load_model
from basketry.training import save_model

DATA = Path(os.environ.get("BASKETRY_SHARED_DATA", Path(__file__).parents[1] / "../shared/data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--support", type=float, default=0.0002)
    parser.add_argument("--baskets", type=int, default=5000)
    args = parser.parse_args()

    baskets = read_baskets(DATA / "retail.dat")
    miner = AssociationMiner(min_support=args.support, min_confidence=0.1).fit(baskets)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(Path(tmp) / "m", miner, baskets)
        start = time.perf_counter()
        model = load_model(Path(tmp) / "m")
        load_s = time.perf_counter() - start
    print(f"model: {model.n_rules:,} rules, {len(model.items):,} items, loaded in {load_s:.2f} s")
    rng = np.random.default_rng(0)
    sample = [baskets.basket(int(b))[:20] for b in rng.integers(0, baskets.n_baskets, args.baskets)]
    model.recommend(sample[0])  # first call loads the compiled kernel
    print(f"{'baskets':<22} {'n':>6} {'k':>3} {'mean us':>9} {'p99 us':>9}")
    for name, chosen in (("sampled (<= 20 items)", sample),
                         ("20 items exactly", [b for b in sample if len(b) == 20])):
        for k in (5, 10):
            times = []
            for basket in chosen:
                t0 = time.perf_counter_ns()
                model.recommend(basket, k=k)
                times.append(time.perf_counter_ns() - t0)
            us = np.asarray(times) / 1e3
            print(f"{name:<22} {len(chosen):>6} {k:>3} {us.mean():>9.1f} "
                  f"{np.percentile(us, 99):>9.1f}")


if __name__ == "__main__":
    main()
