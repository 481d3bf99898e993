"""Sequential rules: hand-made histories with known answers, an exact brute-force count on
random histories (hypothesis), and the refusals of bad input."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.data import Baskets
from basketry.mining.errors import MiningError
from basketry.mining.sequential import mine_sequential

DAY = np.timedelta64(1, "D")
T0 = np.datetime64("2024-01-01T00:00", "ns")


def history(orders: list[tuple[str, float, list[str]]], items: list[str] | None = None
            ) -> Baskets:
    """Baskets from (customer, day, items) rows."""
    base = Baskets.from_lists([o[2] for o in orders], items=items)
    stamps = np.array([T0 + np.timedelta64(round(o[1] * 86_400), "s") for o in orders],
                      dtype="datetime64[ns]")
    customers = np.array([o[0] for o in orders], dtype=object)
    return dataclasses.replace(base, timestamps=stamps, customers=customers, source="hand")


HAND = [
    ("A", 0, ["a", "b"]), ("A", 10, ["c"]), ("A", 50, ["a"]),
    ("B", 0, ["a"]), ("B", 5, ["c", "a"]),
    ("C", 0, ["b"]),
    ("E", 0, ["a"]), ("E", 20, ["a"]),
]


def rules_of(part, items) -> dict[tuple[tuple[str, ...], str], dict]:
    out = {}
    for row in part.rules.to_pylist():
        key = (tuple(items[i] for i in row["antecedent"]), items[row["consequent"]])
        out[key] = row
    return out


def test_hand_made_histories_give_the_known_rules_and_repeats():
    baskets = history(HAND)
    items = list(baskets.items)
    part = mine_sequential(baskets, horizon_days=30, min_support=0, min_confidence=0)
    # followed orders: A day 0 (by day 10), B day 0 (by day 5), E day 0 (by day 20)
    assert part.n_customers == 3
    rules = rules_of(part, items)
    assert set(rules) == {(("a",), "c")}  # b -> c is one customer's only: below 2
    r = rules[(("a",), "c")]
    assert (r["count"], r["antecedent_count"], r["consequent_count"]) == (2, 3, 2)
    assert r["confidence"] == pytest.approx(2 / 3)
    assert r["support"] == pytest.approx(2 / 3)
    assert r["lift"] == pytest.approx((2 / 3) / (2 / 3))
    repeat = {items[row["item"]]: row for row in part.repeat.to_pylist()}
    assert set(repeat) == {"a"}  # B and E bought a again within 30 days
    assert (repeat["a"]["count"], repeat["a"]["antecedent_count"],
            repeat["a"]["consequent_count"]) == (2, 3, 2)
    assert repeat["a"]["confidence"] == pytest.approx(2 / 3)
    assert part.parameters["horizon_days"] == 30.0
    assert part.parameters["basis"] == "customers"


def test_the_horizon_decides_what_follows():
    baskets = history(HAND)
    items = list(baskets.items)
    # 4 days: nothing follows within the horizon but B's day 5? no: 5 > 4
    with pytest.raises(MiningError, match="no customer orders again within 4 days"):
        mine_sequential(baskets, horizon_days=4)
    # 45 days: A's day-10 order is followed by day 50 (c -> a for A), counted once per customer
    part = mine_sequential(baskets, horizon_days=45, min_support=0, min_confidence=0)
    repeat = {items[row["item"]]: row for row in part.repeat.to_pylist()}
    assert repeat["a"]["consequent_count"] == 3  # A, B and E bought a in a follow-up order


def test_same_moment_orders_do_not_follow_each_other():
    baskets = history([("A", 0, ["a"]), ("A", 0, ["b"]), ("B", 0, ["a"]), ("B", 0, ["b"])])
    with pytest.raises(MiningError, match="no customer orders again"):
        mine_sequential(baskets)


def test_pairs_as_antecedents():
    rows = []
    for c in "PQR":
        rows += [(c, 0, ["a", "b"]), (c, 7, ["z"])]
    rows += [("S", 0, ["a"]), ("S", 7, ["y"]), ("T", 0, ["a"]), ("T", 7, ["y"])]
    baskets = history(rows)
    items = list(baskets.items)
    part = mine_sequential(baskets, max_antecedent=2, min_support=0, min_confidence=0)
    rules = rules_of(part, items)
    assert rules[(("a", "b"), "z")]["confidence"] == 1.0
    assert rules[(("a",), "z")]["confidence"] == pytest.approx(3 / 5)
    single = mine_sequential(baskets, min_support=0, min_confidence=0)
    assert all(len(k[0]) == 1 for k in rules_of(single, items))


def test_no_customer_column_is_named():
    baskets = dataclasses.replace(history(HAND), customers=None)
    with pytest.raises(MiningError, match="no customer column"):
        mine_sequential(baskets)


def test_no_timestamp_column_is_named():
    baskets = dataclasses.replace(history(HAND), timestamps=None)
    with pytest.raises(MiningError, match="no timestamp column"):
        mine_sequential(baskets)


@pytest.mark.parametrize("horizon", [0, -3, float("nan")])
def test_a_horizon_of_zero_or_less_is_refused(horizon):
    with pytest.raises(MiningError, match="horizon_days must be a number of days > 0") as err:
        mine_sequential(history(HAND), horizon_days=horizon)
    assert "\n" not in str(err.value)


def brute_force(orders, horizon):
    """Per customer: the (x, y) pairs of a followed order and a later one within the horizon."""
    by_customer: dict[str, list[tuple[float, set[str]]]] = {}
    for c, day, items in orders:
        by_customer.setdefault(c, []).append((day, set(items)))
    pairs: dict[str, set[tuple[str, str]]] = {}
    for c, hist in by_customer.items():
        found = set()
        for (t1, o1), (t2, o2) in itertools.permutations(hist, 2):
            if t1 < t2 <= t1 + horizon:
                found |= {(x, y) for x in o1 for y in o2}
        if found:
            pairs[c] = found
    return pairs


orders_strategy = st.lists(
    st.tuples(st.sampled_from("ABCDEF"), st.integers(0, 60),
              st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=4, unique=True)),
    min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(orders=orders_strategy, horizon=st.sampled_from([1, 7, 30]))
def test_counts_equal_a_brute_force_count(orders, horizon):
    baskets = history(orders)
    items = list(baskets.items)
    pairs = brute_force(orders, horizon)
    if not pairs:
        with pytest.raises(MiningError):
            mine_sequential(baskets, horizon_days=horizon)
        return
    part = mine_sequential(baskets, horizon_days=horizon, min_support=0, min_confidence=0,
                           max_per_antecedent=1000)
    n = len(pairs)
    assert part.n_customers == n
    count: dict[tuple[str, str], int] = {}
    for found in pairs.values():
        for p in found:
            count[p] = count.get(p, 0) + 1
    n_x = {x: sum(any(p[0] == x for p in f) for f in pairs.values()) for x in items}
    n_y = {y: sum(any(p[1] == y for p in f) for f in pairs.values()) for y in items}
    expected = {((x,), y): c for (x, y), c in count.items() if x != y and c >= 2}
    got = rules_of(part, items)
    assert {k: v["count"] for k, v in got.items()} == expected
    for (ante, y), row in got.items():
        assert row["antecedent_count"] == n_x[ante[0]]
        assert row["consequent_count"] == n_y[y]
        assert row["confidence"] == pytest.approx(row["count"] / n_x[ante[0]])
        assert 0 < row["support"] <= 1 and math.isfinite(row["lift"])
    repeat = {items[r["item"]]: r["count"] for r in part.repeat.to_pylist()}
    assert repeat == {x: c for (x, y), c in count.items() if x == y and c >= 2}
