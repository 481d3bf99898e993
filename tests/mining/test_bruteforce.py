"""Both algorithms against brute-force enumeration on random small data sets."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from basketry.data.baskets import Baskets
from basketry.mining import association_rules, frequent_itemsets

from .conftest import brute_itemsets, brute_rules, rows_of

LETTERS = "abcdefghijkl"


@st.composite
def datasets(draw):
    n_items = draw(st.integers(1, 12))
    n = draw(st.integers(1, 40))
    density = draw(st.sampled_from([0.15, 0.3, 0.5, 0.8]))
    rows = []
    for _ in range(n):
        mask = draw(st.lists(st.booleans(), min_size=n_items, max_size=n_items))
        # bias towards the given density without hypothesis drawing floats per item
        rows.append([LETTERS[i] for i in range(n_items) if mask[i] or (i / n_items) < density / 3])
    return rows


def _support(draw, n):
    if draw(st.booleans()):
        return draw(st.integers(1, max(1, n // 2)))
    return draw(st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0]))


def _min_count(s, n):
    return s if isinstance(s, int) else max(1, math.ceil(Fraction(repr(s)) * n))


def _names(fi, d):
    return {tuple(str(fi.items[i]) for i in k): v for k, v in d.items()}


@pytest.mark.parametrize("algorithm", ["fpgrowth", "apriori"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_itemsets_and_rules_match_bruteforce(algorithm, data):
    rows = data.draw(datasets())
    b = Baskets.from_lists(rows)
    n = b.n_baskets
    s = _support(data.draw, n)
    max_len = data.draw(st.sampled_from([None, 1, 2, 3]))
    mc = _min_count(s, n)
    fi = frequent_itemsets(b, s, algorithm=algorithm, max_len=max_len)
    assert fi.min_count == mc
    expected = brute_itemsets(rows_of(b), b.n_items, mc, max_len)
    assert fi.to_dict() == expected
    # deterministic order: by length, then ids
    keys = [fi.itemset(r) for r in range(len(fi))]
    assert keys == sorted(keys, key=lambda k: (len(k), k))

    multi = data.draw(st.booleans())
    conf = data.draw(st.sampled_from([None, 0.0, 0.1, 0.5, 2 / 3, 0.75, 1.0]))
    lift = data.draw(st.sampled_from([None, 0.5, 1.0, 1.5]))
    rules = association_rules(fi, min_confidence=conf, min_lift=lift, multi_consequent=multi)
    got = {
        (rules.antecedent(r), rules.consequent(r)): (
            int(rules.count[r]),
            int(rules.antecedent_count[r]),
            int(rules.consequent_count[r]),
        )
        for r in range(len(rules))
    }
    assert got == brute_rules(expected, n, multi=multi, min_conf=conf, min_lift=lift)
    order = [(rules.antecedent(r), rules.consequent(r)) for r in range(len(rules))]
    assert order == sorted(order)


def _family(rows, n_items, mc, max_len, a, c, excl, multi):
    """The itemsets constrained mining must return, by definition."""
    allowed = set(range(n_items)) - excl
    if a is not None and c is not None:
        allowed &= a | c
    full = brute_itemsets(rows, n_items, mc, max_len)
    base = {
        z: v
        for z, v in full.items()
        if set(z) <= allowed and (multi or a is None or len(set(z) - a) <= 1)
    }
    if c is None:
        return base
    out = {z: v for z, v in base.items() if set(z) & c}
    for z in list(out):
        x = tuple(i for i in z if i not in c)
        if x:
            out[x] = full[x]
    return out


@pytest.mark.parametrize("algorithm", ["fpgrowth", "apriori"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_constraints_equal_mine_all_then_filter(algorithm, data):
    rows = data.draw(datasets())
    b = Baskets.from_lists(rows)
    n = b.n_baskets
    vocab = list(range(b.n_items))
    subset = st.one_of(st.none(), st.sets(st.sampled_from(vocab), max_size=len(vocab)))
    a = data.draw(subset)
    c = data.draw(subset)
    excl = data.draw(st.sets(st.sampled_from(vocab), max_size=2))
    multi = data.draw(st.booleans())
    max_len = data.draw(st.sampled_from([None, 2, 3]))
    s = _support(data.draw, n)
    conf = data.draw(st.sampled_from([None, 0.2, 0.6]))
    names = b.items

    def strs(ids):
        return None if ids is None else [str(names[i]) for i in sorted(ids)]

    fi = frequent_itemsets(
        b, s, algorithm=algorithm, max_len=max_len, exclude=strs(excl),
        antecedents=strs(a), consequents=strs(c), multi_consequent=multi,
    )
    mc = _min_count(s, n)
    rws = rows_of(b)
    assert fi.to_dict() == _family(rws, b.n_items, mc, max_len, a, c, excl, multi)

    rules = association_rules(fi, min_confidence=conf)
    got = {
        (rules.antecedent(r), rules.consequent(r)): int(rules.count[r]) for r in range(len(rules))
    }
    every = brute_itemsets(rws, b.n_items, mc, max_len)
    every = {z: v for z, v in every.items() if not set(z) & excl}
    want = {
        k: v[0]
        for k, v in brute_rules(every, n, multi=multi, min_conf=conf).items()
        if (a is None or set(k[0]) <= a) and (c is None or set(k[1]) <= c)
    }
    assert got == want


def test_measures_match_formulas_on_small_data():
    rows = [["a", "b"], ["a", "b", "c"], ["a"], ["b", "c"], ["c"], ["a", "b", "c"], []]
    fi = frequent_itemsets(rows, 1)
    r = association_rules(fi, multi_consequent=True)
    assert len(r) == 12
    m = r.measures
    n = 7
    for i in range(len(r)):
        nxy, nx, ny = int(r.count[i]), int(r.antecedent_count[i]), int(r.consequent_count[i])
        conf = nxy / nx
        sy = ny / n
        assert m["confidence"][i] == pytest.approx(conf, rel=1e-12)
        assert m["lift"][i] == pytest.approx(conf / sy, rel=1e-12)
        assert m["jaccard"][i] == pytest.approx(nxy / (nx + ny - nxy), rel=1e-12)
    assert np.all(np.isfinite(m["p_value"]))
