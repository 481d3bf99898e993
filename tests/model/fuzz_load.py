"""Random edits of a sound model, re-signed: loading either refuses with ``ModelError`` or gives
a model whose every recommendation works. Never another exception, never a crash.

Run as a program (``python -m tests.model.fuzz_load EXAMPLES``) so that a crash of the compiled
scorer (a segfault) ends this process only: ``test_fuzz_load.py`` runs it and checks its exit
status. It prints how many edited models loaded and how many were refused.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from basketry.model import Model, ModelError, items_table, load_model, write_model
from basketry.model.format import ITEMS_FILE, RULES_FILE
from tests.model.conftest import make_rules
from tests.model.tamper import read_json, resign, write_json

ITEMS = ["a", "b", "c", "d", "e"]
COUNTS = [50, 40, 30, 20, 60]
ROWS = [
    ([0], [1], 30, 50, 40),
    ([0], [2], 30, 50, 30),
    ([1], [0], 30, 40, 50),
    ([0, 1], [2], 20, 30, 30),
    ([0, 1], [3], 27, 30, 30),
    ([3], [0, 1], 10, 20, 30),
    ([4], [0], 25, 60, 50),
]
N = 100

IDS = [-(2**31), -1, 0, 1, 2, 3, 4, 5, 2**31 - 1]
COUNT_VALUES = [-(2**63), -1, 0, 1, 20, 30, 50, 99, 100, 101, 2**62, None]
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 0.3, 1.0, 1.0000000000000002,
          1e300, -1e-300, None]
MANIFEST_VALUES = [0, 1, -1, 5, 7, 100, 2**63, True, False, 1.0, 100.5, "100", None, [], {}]
SCORINGS = [None, {}, "lift", "evil", 5, {"method": "evil"}, {"method": "confidence"},
            {"method": "smoothed", "prior_weight": 0}, {"method": "smoothed", "combine": 1e300},
            {"method": "smoothed", "prior_weight": -1}, {"method": "smoothed", "combine": "x"},
            {"method": "lift", "combine": 1}, {"method": "smoothed", "prior_weight": 1e308}]

BASE = {"items": items_table(np.array(ITEMS, dtype=object), np.array(COUNTS)),
        "rules": make_rules(ROWS, n=N)}

itemsets = st.lists(st.sampled_from(IDS), max_size=3)
edits = st.one_of(
    st.tuples(st.just("rules"), st.sampled_from(["antecedent", "consequent"]),
              st.integers(0, len(ROWS) - 1), itemsets),
    st.tuples(st.just("rules"), st.sampled_from(["count", "antecedent_count",
                                                 "consequent_count"]),
              st.integers(0, len(ROWS) - 1), st.sampled_from(COUNT_VALUES)),
    st.tuples(st.just("rules"), st.sampled_from(BASE["rules"].column_names[5:]),
              st.integers(0, len(ROWS) - 1), st.sampled_from(FLOATS)),
    st.tuples(st.just("items"), st.just("count"), st.integers(0, len(ITEMS) - 1),
              st.sampled_from(COUNT_VALUES)),
    st.tuples(st.just("items"), st.just("item"), st.integers(0, len(ITEMS) - 1),
              st.sampled_from(["a", "e", "", "zz", None])),
    st.tuples(st.just("manifest"), st.sampled_from(["n_baskets", "n_items", "n_rules"]),
              st.just(0), st.sampled_from(MANIFEST_VALUES)),
    st.tuples(st.just("manifest"), st.just("format_version"), st.just(0),
              st.sampled_from(MANIFEST_VALUES)),
    st.tuples(st.just("manifest"), st.just("scoring"), st.just(0), st.sampled_from(SCORINGS)),
)

outcomes: Counter[str] = Counter()


def _table(base: pa.Table, changes: list[tuple[str, int, Any]]) -> pa.Table:
    columns = {name: base.column(name).to_pylist() for name in base.column_names}
    for column, row, value in changes:
        columns[column][row] = value
    # nullable fields, so that a null can be written (loading must refuse it)
    return pa.table({name: pa.array(values, base.schema.field(name).type)
                     for name, values in columns.items()})


def apply(model: Path, changes: list[tuple[str, str, int, Any]]) -> None:
    for table, name in (("rules", RULES_FILE), ("items", ITEMS_FILE)):
        mine = [(c, r, v) for t, c, r, v in changes if t == table]
        if mine:
            pq.write_table(_table(BASE[table], mine), model / name)
    manifest = read_json(model)
    for target, key, _, value in changes:
        if target != "manifest":
            continue
        if key in ("n_baskets", "n_items", "n_rules"):
            manifest["counts"][key] = value
        else:
            manifest[key] = value
    write_json(model, manifest)
    resign(model)


def exercise(model: Model) -> None:
    """Every recommendation of the loaded model works and is sound."""
    n_items = len(model.items)
    baskets: list[list[str]] = [[], ["unknown"], list(model.items)]
    baskets += [[item] for item in model.items]
    baskets += [[model.items[i] for i in ante] for ante in
                model.artifact.rules.column("antecedent").to_pylist()]
    for basket in baskets:
        known = {item for item in basket if item in model.item_ids}
        for k in (1, 2, n_items, n_items + 3, 10**12):
            for exclude in ((), model.items[:1]):
                answer = model.recommend(basket, k=k, exclude=exclude)
                got = [r.item for r in answer.items]
                allowed = set(model.items) - known - set(exclude)
                assert len(got) == len(set(got)) == min(k, len(allowed)), (basket, k, got)
                assert set(got) <= allowed
                assert all(not math.isnan(r.score) for r in answer.items)
    for item in model.items:
        assert len(model.associations(item, k=3).items) == min(3, n_items - 1)
    ids = [sorted({model.item_ids[i] for i in b if i in model.item_ids}) for b in baskets]
    ptr = np.cumsum([0] + [len(i) for i in ids])
    flat = np.array([x for i in ids for x in i], dtype=np.int32)
    top, from_rules = model.top_items(ptr, flat, 3)
    assert top.shape == (len(baskets), 3) and (from_rules <= 3).all()
    assert ((top >= -1) & (top < n_items)).all()


def check(changes: list[tuple[str, str, int, Any]], verify: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        write_model(model_dir, items=BASE["items"], rules=BASE["rules"], n_baskets=N,
                    parameters={}, scoring={"method": "smoothed"})
        apply(model_dir, changes)
        try:
            model = load_model(model_dir, verify=verify)
        except ModelError as exc:
            assert "\n" not in str(exc), str(exc)
            outcomes["refused"] += 1
            return
        outcomes["loaded"] += 1
        exercise(model)


def main(examples: int) -> None:
    fuzz = given(changes=st.lists(edits, min_size=1, max_size=4), verify=st.booleans())(check)
    settings(max_examples=examples, deadline=None, database=None,
             suppress_health_check=list(HealthCheck))(fuzz)()
    print(f"loaded={outcomes['loaded']} refused={outcomes['refused']}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
