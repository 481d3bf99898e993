"""After the purchase (issue 18, part 2): the next-order table of ``train`` on Online Retail,
and the rule weight on a validation cut (the 30 days before the test part, never the test).

    python bench/next_order.py

Data: ``/work/shared/data/online_retail.parquet`` (``BASKETRY_DATA`` overrides the folder),
the online-retail preset; the last 30 days as test, as ``train --test-days 30`` does, with
``--min-support 0.01 --min-confidence 0.1`` for the co-purchase rules. Prints the load average.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from basketry.data import read_baskets
from basketry.mining.sequential import mine_sequential
from basketry.model.sequential import AfterPurchase
from basketry.training.next_order import evaluate_next_order, next_order_cases
from basketry.training.pipeline import mine_rules, prepare_split, train_and_evaluate

MINING = {"min_support": 0.01, "min_confidence": 0.1}


def main() -> None:
    data = Path(os.environ.get("BASKETRY_DATA", "/work/shared/data")) / "online_retail.parquet"
    print("load average", os.getloadavg())
    baskets = read_baskets(data)
    started = time.perf_counter()
    result = train_and_evaluate(baskets, MINING, test_days=30)
    print(f"train: {time.perf_counter() - started:.1f} s")
    print(json.dumps(result.report["after_purchase"], indent=1, default=str))
    # the rule weight on a validation cut of the training part
    prepared = prepare_split(baskets, test_days=30)
    validation = prepare_split(prepared.split.train, test_days=30)
    part = mine_sequential(validation.train)
    mined = mine_rules(validation.train, MINING)
    popularity = mined.items.column("count").to_numpy() / validation.train.n_baskets
    cases = next_order_cases(prepared.split.train, validation.split.cutoff,
                             validation.old_to_new)
    print("validation cases", cases.n_cases)
    for weight in (0.0, 0.1, 0.25, 0.5, 1.0):
        weighted = dataclasses.replace(part, parameters={**part.parameters,
                                                         "rule_weight": weight})
        metrics = evaluate_next_order(cases, AfterPurchase(weighted, popularity))
        print("rule_weight", weight, {k: round(v, 4) for k, v in metrics["sequential"].items()})
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main()
