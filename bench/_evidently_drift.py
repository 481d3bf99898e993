"""Evidently's default drift check of a categorical column, window by window: run by
bench/drift.py with the interpreter of a virtualenv of its own (Evidently's pins clash with
basketry's: it breaks with pandas 3), never imported into basketry's.

    python _evidently_drift.py REFERENCE.csv WINDOWS.csv OUT.jsonl

REFERENCE.csv has one column ``item`` (the training period's (basket, item) rows);
WINDOWS.csv has ``window,item``. For each window, ``Report([ValueDrift(column="item")])`` with
the method and threshold left to Evidently (its defaults: the stattest picked for the column's
type and size, and that stattest's default threshold), the column declared categorical; the
verdict is Evidently's own test result. One JSON line per window: window, method, threshold,
value, drifted, seconds.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift


def main(reference_csv: str, windows_csv: str, out_path: str) -> int:
    definition = DataDefinition(categorical_columns=["item"])
    reference = Dataset.from_pandas(pd.read_csv(reference_csv, dtype={"item": str}),
                                    data_definition=definition)
    windows = pd.read_csv(windows_csv, dtype={"window": int, "item": str})
    with open(out_path, "w") as out:
        for window, rows in windows.groupby("window", sort=True):
            started = time.perf_counter()
            current = Dataset.from_pandas(rows[["item"]].reset_index(drop=True),
                                          data_definition=definition)
            report = Report([ValueDrift(column="item")], include_tests=True)
            result = report.run(current, reference).dict()
            (metric,) = result["metrics"]
            (test,) = result["tests"]
            out.write(json.dumps({
                "window": int(window), "method": metric["config"]["method"],
                "threshold": metric["config"]["threshold"], "value": float(metric["value"]),
                "drifted": test["status"] == "FAIL",
                "seconds": time.perf_counter() - started}) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
