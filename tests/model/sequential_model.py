"""A small model with a sequential part, made from hand-made customer histories (shared by
the format, serving and next-order tests)."""

from __future__ import annotations

from pathlib import Path

from basketry.mining import AssociationMiner
from basketry.mining.sequential import mine_sequential
from basketry.model import items_table, write_model
from tests.mining.test_sequential import history

#: Three customers buy a then, within a week, z; two buy a again; b and a go together.
ORDERS = [
    ("P", 0, ["a", "b"]), ("P", 7, ["z"]), ("P", 9, ["a"]),
    ("Q", 0, ["a", "b"]), ("Q", 7, ["z", "a"]),
    ("R", 0, ["a"]), ("R", 7, ["z"]),
    ("S", 0, ["b", "c"]), ("S", 3, ["c"]),
    ("T", 0, ["c"]), ("T", 2, ["c", "b"]),
]


def make_model(path: Path, *, sequential: bool = True) -> Path:
    baskets = history(ORDERS)
    miner = AssociationMiner(min_support=2, min_confidence=0.0).fit(baskets)
    part = mine_sequential(baskets, min_support=0, min_confidence=0) if sequential else None
    return write_model(path, items=items_table(baskets.items, miner.item_counts_),
                       rules=miner.rules_table(), n_baskets=baskets.n_baskets,
                       parameters={"min_support": 2}, sequential=part)
