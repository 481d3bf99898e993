"""Exactness on the shared real data sets against independent implementations (pyfim, mlxtend,
scipy, plain Python fractions)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import cache

import numpy as np
import pytest

from basketry.mining import AssociationMiner, association_rules, frequent_itemsets

from .conftest import load_baskets, load_lists

fim = pytest.importorskip("fim")

pytestmark = pytest.mark.slow

CASES = [
    ("groceries.csv", 0.01),
    ("groceries.csv", 0.002),
    ("groceries.csv", 0.001),
    ("chess.dat", 0.8),
    ("chess.dat", 0.7),
    ("mushroom.dat", 0.3),
    ("mushroom.dat", 0.15),
    ("retail.dat", 0.001),
    ("retail.dat", 0.0005),
    ("T10I4D100K.dat", 0.005),
]
FP_ONLY = [("retail.dat", 0.0002), ("chess.dat", 0.65), ("T10I4D100K.dat", 0.002)]


@cache
def pyfim_itemsets(name: str, support: float) -> dict[tuple[str, ...], int]:
    tracts = load_lists(name)
    mc = math.ceil(Fraction(repr(support)) * len(tracts))
    found = fim.fpgrowth(tracts, target="s", supp=-mc, zmin=1, report="a")
    return {tuple(sorted(s)): int(c) for s, c in found}


def _by_name(fi) -> dict[tuple[str, ...], int]:
    names = fi.items
    return {
        tuple(sorted(str(names[i]) for i in fi.indices[fi.indptr[r] : fi.indptr[r + 1]])): int(
            fi.counts[r]
        )
        for r in range(len(fi))
    }


def _assert_same_itemsets(ours, ref, n):
    # pyfim leaves out a single item that is in every basket (it has the empty set's support);
    # anything else must match exactly
    extra = ours.keys() - ref.keys()
    assert all(len(k) == 1 and ours[k] == n for k in extra), sorted(extra)[:5]
    assert ref.keys() <= ours.keys()
    assert all(ours[k] == v for k, v in ref.items())


@pytest.mark.parametrize(
    ("name", "support", "algorithm"),
    [(n, s, a) for n, s in CASES for a in ("fpgrowth", "apriori")]
    + [(n, s, "fpgrowth") for n, s in FP_ONLY],
)
def test_itemsets_equal_pyfim(name, support, algorithm):
    b = load_baskets(name)
    fi = frequent_itemsets(b, support, algorithm=algorithm)
    assert fi.min_count == math.ceil(Fraction(repr(support)) * b.n_baskets)
    _assert_same_itemsets(_by_name(fi), pyfim_itemsets(name, support), b.n_baskets)


def _expected_measures(nxy: int, nx: int, ny: int, n: int) -> dict[str, float]:
    sxy, sx, sy = Fraction(nxy, n), Fraction(nx, n), Fraction(ny, n)
    conf = Fraction(nxy, nx)
    zden = max(sxy * (1 - sx), sx * (sy - sxy))
    return {
        "support": float(sxy),
        "antecedent_support": float(sx),
        "consequent_support": float(sy),
        "confidence": float(conf),
        "lift": float(conf / sy),
        "leverage": float(sxy - sx * sy),
        "conviction": math.inf if conf == 1 else float((1 - sy) / (1 - conf)),
        "zhang": 0.0 if zden == 0 else float((sxy - sx * sy) / zden),
        "jaccard": float(sxy / (sx + sy - sxy)),
        "certainty": 0.0 if sy == 1 else float((conf - sy) / (1 - sy)),
        "kulczynski": float((Fraction(nxy, nx) + Fraction(nxy, ny)) / 2),
    }


def _rules_from_counts(ref, n, min_conf, multi):
    conf = Fraction(repr(min_conf))
    out = {}
    for z, nz in ref.items():
        for k in range(1, len(z)) if multi else ([1] if len(z) > 1 else []):
            for y in itertools.combinations(z, k):
                x = tuple(i for i in z if i not in y)
                if Fraction(nz, ref[x]) >= conf:
                    out[(x, y)] = (nz, ref[x], ref[y])
    return out


@pytest.mark.parametrize(
    ("name", "support", "min_conf", "multi"),
    [
        ("retail.dat", 0.001, 0.1, False),
        ("retail.dat", 0.001, 0.1, True),
        ("groceries.csv", 0.002, 0.05, True),
        ("mushroom.dat", 0.3, 0.5, False),
    ],
)
def test_rules_and_measures_from_independent_counts(name, support, min_conf, multi):
    from scipy.stats import hypergeom

    b = load_baskets(name)
    n = b.n_baskets
    ref = dict(pyfim_itemsets(name, support))
    for i, c in enumerate(b.item_counts()):  # the singletons pyfim may leave out
        ref.setdefault((str(b.items[i]),), int(c))
    miner = AssociationMiner(
        min_support=support, min_confidence=min_conf, multi_consequent=multi
    ).fit(b)
    df = miner.rules_
    want = _rules_from_counts(ref, n, min_conf, multi)
    got = {
        (tuple(sorted(a)), tuple(sorted(c))): (nz, nx, ny)
        for a, c, nz, nx, ny in zip(
            df["antecedent"], df["consequent"], df["count"], df["antecedent_count"],
            df["consequent_count"], strict=True,
        )
    }
    assert got == want
    names = list(_expected_measures(2, 3, 4, 10))
    values = {k: df[k].to_numpy() for k in [*names, "p_value"]}
    for r, (nxy, nx, ny) in enumerate(
        zip(df["count"], df["antecedent_count"], df["consequent_count"], strict=True)
    ):
        exp = _expected_measures(int(nxy), int(nx), int(ny), n)
        for k in names:
            got_v, exp_v = values[k][r], exp[k]
            assert got_v == exp_v or math.isclose(got_v, exp_v, rel_tol=1e-9, abs_tol=1e-9), (
                k, r, got_v, exp_v,
            )
    p_exp = hypergeom.sf(df["count"] - 1, n, df["antecedent_count"], df["consequent_count"])
    np.testing.assert_allclose(values["p_value"], p_exp, rtol=1e-9, atol=1e-12)


def test_single_consequent_rules_equal_pyfim_rules():
    tracts = load_lists("retail.dat")
    b = load_baskets("retail.dat")
    mc = math.ceil(Fraction("0.001") * len(tracts))
    found = fim.fpgrowth(
        tracts, target="r", supp=-mc, conf=10, zmin=2, report="abh", mode="o"
    )
    ref = {(tuple(sorted(body)), (head,)): (a, bc, hc) for head, body, a, bc, hc in found}
    miner = AssociationMiner(min_support=0.001, min_confidence=0.1).fit(b)
    df = miner.rules_
    got = {
        (tuple(sorted(a)), tuple(c)): (nz, nx, ny)
        for a, c, nz, nx, ny in zip(
            df["antecedent"], df["consequent"], df["count"], df["antecedent_count"],
            df["consequent_count"], strict=True,
        )
    }
    assert len(got) == 8249
    assert got == ref


def test_confidence_boundary_is_exact_on_retail():
    """At support 0.001 / confidence 0.1 (all consequents), rules whose confidence is exactly
    1/10 are kept: the comparison is on integers, n_xy * 10 >= n_x."""
    b = load_baskets("retail.dat")
    fi = frequent_itemsets(b, 0.001, multi_consequent=True)
    rules = association_rules(fi, min_confidence=0.1, multi_consequent=True)
    assert len(rules) == 11582
    exact = np.flatnonzero(rules.count * 10 == rules.antecedent_count)
    assert len(exact) == 2
    names = {
        (
            tuple(str(b.items[i]) for i in rules.antecedent(r)),
            tuple(str(b.items[i]) for i in rules.consequent(r)),
        ): (int(rules.count[r]), int(rules.antecedent_count[r]))
        for r in exact
    }
    assert sorted(names.values()) == [(111, 1110), (121, 1210)]
    assert {a for a, _ in names} == {("677",), ("824",)}
    # the usual float route (ratio of float supports) puts them below 0.1
    n = b.n_baskets
    assert all((nz / n) / (nx / n) < 0.1 for nz, nx in names.values())
    # nothing just below the boundary got in
    assert np.all(rules.count * 10 >= rules.antecedent_count)


def test_multi_consequent_rules_equal_mlxtend_on_groceries():
    pd = pytest.importorskip("pandas")
    mlx = pytest.importorskip("mlxtend.frequent_patterns")
    from mlxtend.preprocessing import TransactionEncoder

    tracts = load_lists("groceries.csv")
    te = TransactionEncoder()
    onehot = pd.DataFrame(te.fit(tracts).transform(tracts), columns=te.columns_)
    fi = mlx.fpgrowth(onehot, min_support=0.005, use_colnames=True)
    ref = mlx.association_rules(fi, num_itemsets=len(tracts), metric="confidence",
                                min_threshold=0.2)
    miner = AssociationMiner(min_support=0.005, min_confidence=0.2, multi_consequent=True)
    df = miner.fit(load_baskets("groceries.csv")).rules_
    key = lambda a, c: (frozenset(a), frozenset(c))  # noqa: E731
    ours = {key(a, c): i for i, (a, c) in enumerate(zip(df["antecedent"], df["consequent"],
                                                          strict=True))}
    theirs = {key(a, c): i for i, (a, c) in enumerate(zip(ref["antecedents"],
                                                            ref["consequents"], strict=True))}
    # mlxtend compares a ratio of float supports; we compare integers. The only differences
    # allowed are rules exactly at the confidence boundary (n_xy / n_x == 1/5), which we keep.
    for k in ours.keys() - theirs.keys():
        r = ours[k]
        assert df["count"][r] * 5 == df["antecedent_count"][r], k
    assert theirs.keys() <= ours.keys()
    assert len(ours) > 500
    pairs = [("confidence", "confidence"), ("lift", "lift"), ("leverage", "leverage"),
             ("conviction", "conviction"), ("zhang", "zhangs_metric"), ("jaccard", "jaccard"),
             ("certainty", "certainty"), ("kulczynski", "kulczynski"),
             ("support", "support"), ("antecedent_support", "antecedent support")]
    idx_o = np.array([ours[k] for k in theirs])
    idx_t = np.array(list(theirs.values()))
    for mine, their in pairs:
        np.testing.assert_allclose(
            df[mine].to_numpy()[idx_o], ref[their].to_numpy()[idx_t], rtol=1e-9, atol=1e-12,
            err_msg=mine,
        )
