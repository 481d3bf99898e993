"""Parameters, budgets, progress and the estimator's outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from basketry.data.baskets import Baskets
from basketry.mining import (
    AssociationMiner,
    BudgetExceeded,
    MiningError,
    association_rules,
    frequent_itemsets,
)
from basketry.mining._params import min_count_from_support

ROWS = [
    ["milk", "bread"],
    ["milk", "bread", "butter"],
    ["milk"],
    ["bread", "butter"],
    ["butter"],
    ["milk", "bread", "butter", "jam"],
    ["jam", "bread"],
    [],
    ["milk", "jam"],
    ["bread", "milk"],
]


def test_min_count_is_exact():
    assert min_count_from_support(0.1, 10) == 1
    assert min_count_from_support(0.1, 30) == 3  # 0.1 * 30 is 3.0000000000000004 in floats
    assert min_count_from_support(0.3, 10) == 3
    assert min_count_from_support(0.7, 10) == 7  # float: 7.000000000000001
    assert min_count_from_support(1.0, 10) == 10
    assert min_count_from_support(1e-9, 10) == 1
    assert min_count_from_support(3, 10) == 3


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_support": -0.1}, "min_support"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_support": float("nan")}, "min_support"),
        ({"min_support": "0.1"}, "min_support"),
        ({"min_support": True}, "min_support"),
        ({"min_confidence": 1.2}, "min_confidence"),
        ({"min_confidence": -0.1}, "min_confidence"),
        ({"min_lift": -1}, "min_lift"),
        ({"max_p_value": 0}, "max_p_value"),
        ({"max_p_value": 1.5}, "max_p_value"),
        ({"max_len": 0}, "max_len"),
        ({"max_len": 2.5}, "max_len"),
        ({"algorithm": "eclat"}, "algorithm"),
        ({"max_itemsets": 0}, "max_itemsets"),
        ({"max_rules": -3}, "max_rules"),
        ({"consequents": ["caviar"]}, "consequents"),
        ({"antecedents": ["caviar"]}, "antecedents"),
        ({"exclude": ["caviar"]}, "exclude"),
        ({"multi_consequent": "yes"}, "multi_consequent"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(kwargs, param):
    miner = AssociationMiner(**kwargs)  # __init__ only stores
    with pytest.raises(MiningError, match=param):
        miner.fit(ROWS)


def test_mining_error_is_a_value_error():
    assert issubclass(MiningError, ValueError)
    assert issubclass(BudgetExceeded, MiningError)
    with pytest.raises(ValueError):
        frequent_itemsets(ROWS, 2.0)


def test_bad_baskets():
    with pytest.raises(MiningError, match="baskets"):
        AssociationMiner().fit("milk bread")
    with pytest.raises(MiningError, match="baskets"):
        AssociationMiner().fit([["milk"], "bread"])


@pytest.mark.parametrize("algorithm", ["fpgrowth", "apriori"])
def test_itemset_budget_raises_with_advice(algorithm):
    from .conftest import load_baskets

    b = load_baskets("chess.dat")
    with pytest.raises(BudgetExceeded) as info:
        frequent_itemsets(b, 0.5, algorithm=algorithm, max_itemsets=20_000)
    msg = str(info.value)
    assert "max_itemsets=20,000" in msg
    assert "min_support to about" in msg
    assert "max_len" in msg
    assert info.value.found > 20_000
    assert info.value.what == "itemsets"
    # the advice is sound: at the suggested support, fewer itemsets than the budget
    suggested = float(msg.split("min_support to about ")[1].split()[0])
    assert len(frequent_itemsets(b, suggested, algorithm="fpgrowth")) > 0


def test_rule_budget_raises_with_advice():
    miner = AssociationMiner(min_support=1, min_confidence=0.0, max_rules=3)
    with pytest.raises(BudgetExceeded, match=r"max_rules=3.*min_confidence") as info:
        miner.fit(ROWS)
    assert info.value.what == "rules"


def test_estimator_outputs():
    miner = AssociationMiner(min_support=0.2, min_confidence=0.5)
    assert miner.fit(ROWS) is miner
    assert miner.n_baskets_ == 10
    assert miner.min_count_ == 2
    assert list(miner.items_) == ["bread", "butter", "jam", "milk"]
    assert miner.item_counts_.tolist() == [6, 4, 3, 6]
    its = miner.itemsets_
    assert list(its.columns) == ["itemset", "count", "support", "length"]
    assert its["itemset"].iloc[0] == ("bread",)
    row = its[its["itemset"] == ("bread", "milk")].iloc[0]
    assert row["count"] == 4 and row["support"] == pytest.approx(0.4) and row["length"] == 2
    rules = miner.rules_
    assert list(rules.columns) == [
        "antecedent", "consequent", "count", "antecedent_count", "consequent_count", "support",
        "antecedent_support", "consequent_support", "confidence", "lift", "leverage",
        "conviction", "zhang", "jaccard", "certainty", "kulczynski", "p_value",
    ]
    assert (rules["confidence"] >= 0.5).all()
    r = rules[(rules["antecedent"] == ("bread",)) & (rules["consequent"] == ("milk",))].iloc[0]
    assert (r["count"], r["antecedent_count"], r["consequent_count"]) == (4, 6, 6)
    table = miner.rules_table()
    assert isinstance(table, pa.Table)
    assert table.schema.field("antecedent").type == pa.list_(pa.int32())
    assert table.num_rows == len(rules)
    ants = table.column("antecedent").to_pylist()
    cons = table.column("consequent").to_pylist()
    assert list(zip(ants, cons, strict=True)) == sorted(zip(ants, cons, strict=True))
    names = miner.items_
    assert [tuple(names[i] for i in a) for a in ants] == list(rules["antecedent"])
    np.testing.assert_array_equal(table.column("lift").to_numpy(), rules["lift"].to_numpy())


def test_estimator_accepts_baskets_and_is_deterministic():
    b = Baskets.from_lists(ROWS)
    a = AssociationMiner(min_support=1, min_confidence=0.1, multi_consequent=True).fit(b)
    c = AssociationMiner(min_support=1, min_confidence=0.1, multi_consequent=True).fit(
        list(reversed(ROWS))
    )
    pd.testing.assert_frame_equal(a.rules_, c.rules_)
    pd.testing.assert_frame_equal(a.itemsets_, c.itemsets_)


def test_not_fitted():
    with pytest.raises(MiningError, match="fit"):
        AssociationMiner().rules_  # noqa: B018


def test_params_roundtrip():
    m = AssociationMiner(min_support=0.05, max_len=3)
    assert m.get_params()["max_len"] == 3
    m.set_params(max_len=4)
    assert m.max_len == 4
    with pytest.raises(MiningError):
        m.set_params(nope=1)


@pytest.mark.parametrize("algorithm", ["fpgrowth", "apriori"])
def test_progress_is_monotone_and_reaches_one(algorithm):
    from .conftest import load_baskets

    seen: list[float] = []
    AssociationMiner(min_support=0.001, algorithm=algorithm).fit(
        load_baskets("groceries.csv"), progress=seen.append
    )
    assert seen[-1] == 1.0
    assert all(0.0 <= x <= 1.0 for x in seen)
    assert seen == sorted(seen)
    assert len(seen) > 3


def test_empty_and_degenerate():
    fi = frequent_itemsets([[], []], 1)
    assert len(fi) == 0
    assert len(association_rules(fi)) == 0
    m = AssociationMiner(min_support=1.0, min_confidence=None).fit([["a", "b"], ["a", "b"]])
    assert len(m.itemsets_) == 3
    r = m.rules_
    assert len(r) == 2
    assert np.isinf(r["conviction"]).all()
    assert (r["certainty"] == 0).all() and (r["zhang"] == 0).all()
    assert (r["p_value"] == 1.0).all()


def test_multi_consequent_needs_matching_itemsets():
    fi = frequent_itemsets(ROWS, 1, antecedents=["milk", "bread"])
    with pytest.raises(MiningError, match="multi_consequent"):
        association_rules(fi, multi_consequent=True)


def test_max_consequent_len():
    fi = frequent_itemsets(ROWS, 1, multi_consequent=True)
    r2 = association_rules(fi, max_consequent_len=2)
    lens = np.diff(r2.consequent_indptr)
    assert lens.max() == 2
    r_all = association_rules(fi, multi_consequent=True)
    assert np.diff(r_all.consequent_indptr).max() == 3
