"""A plain pyfim script, the peer of `basketry mine` in bench/startup.py: read a basket-per-line
file, mine the rules with FP-Growth, write them to Parquet. What a user would write by hand.

    python bench/_pyfim_mine.py FILE MIN_SUPPORT MIN_CONFIDENCE OUT.parquet
"""

from __future__ import annotations

import math
import sys

import fim
import pyarrow as pa
import pyarrow.parquet as pq


def main(path: str, support: float, confidence: float, out: str) -> None:
    with open(path) as fh:
        tracts = [line.split() for line in fh if line.strip()]
    min_count = math.ceil(support * len(tracts) - 1e-9)  # basketry's exact integer threshold
    # mode 'o': rule support is the support of the whole rule; a: rule count, b: body count,
    # h: head count
    rules = fim.fpgrowth(tracts, target="r", supp=-min_count, conf=100 * confidence, zmin=2,
                         report="abh", mode="o")
    table = pa.table({
        "antecedent": [list(body) for _, body, *_ in rules],
        "consequent": [head for head, *_ in rules],
        "count": [r[2] for r in rules],
        "antecedent_count": [r[3] for r in rules],
        "consequent_count": [r[4] for r in rules],
    })
    pq.write_table(table, out, compression="zstd")
    print(f"{len(rules)} rules")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
