from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from basketry.model import RULES_SCHEMA, items_table, write_model


def make_rules(rows: list[tuple[list[int], list[int], int, int, int]], n: int) -> pa.Table:
    """Rules table from (antecedent ids, consequent ids, n_xy, n_x, n_y) with derived measures."""
    cols: dict[str, list] = {name: [] for name in RULES_SCHEMA.names}
    for ante, cons, nxy, nx, ny in rows:
        sxy, sx, sy = nxy / n, nx / n, ny / n
        conf = nxy / nx
        cols["antecedent"].append(ante)
        cols["consequent"].append(cons)
        cols["count"].append(nxy)
        cols["antecedent_count"].append(nx)
        cols["consequent_count"].append(ny)
        cols["support"].append(sxy)
        cols["antecedent_support"].append(sx)
        cols["consequent_support"].append(sy)
        cols["confidence"].append(conf)
        cols["lift"].append(conf / sy)
        cols["leverage"].append(sxy - sx * sy)
        cols["conviction"].append(np.inf if conf == 1 else (1 - sy) / (1 - conf))
        cols["zhang"].append(0.0)
        cols["jaccard"].append(sxy / (sx + sy - sxy))
        cols["certainty"].append(0.0)
        cols["kulczynski"].append((nxy / nx + nxy / ny) / 2)
        cols["p_value"].append(0.5)
    return pa.table(cols, schema=RULES_SCHEMA)


@pytest.fixture
def tiny_model(tmp_path):
    """A hand-made model: items a..e, rules chosen to exercise ranking and ties (scored by
    plain confidence, where the ties are exact)."""
    items = items_table(
        np.array(["a", "b", "c", "d", "e"], dtype=object),
        np.array([50, 40, 30, 20, 60]),
        np.array(["Apple", "Bread", None, "Dates", "Eggs"], dtype=object),
    )
    rules = make_rules(
        [
            ([0], [1], 30, 50, 40),  # a -> b  conf 0.6
            ([0], [2], 30, 50, 30),  # a -> c  conf 0.6, higher lift than a -> b
            ([1], [0], 30, 40, 50),  # b -> a  conf 0.75
            ([0, 1], [2], 20, 30, 30),  # a b -> c conf 0.667
            ([0, 1], [3], 27, 30, 30),  # a b -> d conf 0.9
            ([3], [0, 1], 10, 20, 30),  # multi-item consequent: not used for scoring
        ],
        n=100,
    )
    path = tmp_path / "model"
    write_model(path, items=items, rules=rules, n_baskets=100, parameters={"min_support": 0.1},
                scoring={"method": "confidence"})
    return path
