"""The layout engine on small cases: evaluation by hand, moves and their gains, the planted
groups recovered, weightings, shelf order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.data.baskets import Baskets
from basketry.data.synthetic import SyntheticSpec, generate
from basketry.layout import (
    Anchor,
    Categories,
    Current,
    LayoutParams,
    build_affinity,
    pairs_from_baskets,
    plan_layout,
)
from basketry.layout.affinity import WEIGHTINGS, PairCounts, pair_weights
from basketry.layout.evaluate import category_layout, held_out_pairs, shares
from basketry.layout.moves import MoveSearch, objective, parse_budget
from basketry.layout.ordering import order_groups, path_weight
from basketry.model.layout import LayoutPlan


def baskets(rows: list[list[str]]) -> Baskets:
    return Baskets.from_lists(rows)


def test_held_out_shares_by_hand() -> None:
    # items a b c d; layout: a, b in aisle 0; c in 1; d in 2; e unknown to the layout
    index = {"a": 0, "b": 1, "c": 2, "d": 3}
    test = baskets([["a", "b"], ["a", "b", "c"], ["c", "d"], ["a", "d", "e"]])
    held = held_out_pairs(test, index)
    # pairs: ab x2, ac, bc, cd, ad (e is outside the layout) = 6 occurrences
    assert held.total == 6
    assert held.pairs_all == 1 + 3 + 1 + 3
    aisle = np.array([0, 0, 1, 2])
    same, near = shares(held, aisle)
    assert same == pytest.approx(2 / 6)  # ab twice
    assert near == pytest.approx(5 / 6)  # + ac, bc (0-1), cd (1-2); ad (0-2) is far


def test_category_only_layout_fills_aisles_by_category() -> None:
    category = np.array([1, 0, 1, -1, 0, 1])
    popularity = np.array([5.0, 1.0, 9.0, 3.0, 2.0, 1.0])
    aisle = category_layout(category, popularity, [3, 3])
    # category 1 is the largest (3 products): aisle 0, most popular first; then 0, then none
    assert aisle.tolist() == [0, 1, 0, 1, 1, 0]


def test_weightings_by_hand() -> None:
    pairs = PairCounts(items=np.array(["a", "b", "c"], dtype=object), labels=[None] * 3,
                       counts=np.array([50, 40, 10]), n_baskets=100,
                       i=np.array([0, 0], dtype=np.int32), j=np.array([1, 2], dtype=np.int32),
                       pair=np.array([30, 4]))
    lift = pair_weights(pairs, "lift")
    assert lift[0] == pytest.approx(30 * 100 / (50 * 40))
    assert lift[1] == 0  # 4 < 50 * 10 / 100 = 5: below independence
    assert pair_weights(pairs, "excess").tolist() == pytest.approx([30 - 20, 0])
    assert pair_weights(pairs, "jaccard")[0] == pytest.approx(30 / (50 + 40 - 30))
    assert pair_weights(pairs, "count").tolist() == [30, 4]
    sig = pair_weights(pairs, "significant")
    assert sig[0] == 30 and sig[1] == 0
    for w in WEIGHTINGS:
        assert (pair_weights(pairs, w) >= 0).all()


def _random_graph(rng: np.random.Generator, n: int) -> sp.csr_matrix:
    dense = np.triu(rng.random((n, n)) * (rng.random((n, n)) < 0.3), 1)
    return sp.csr_matrix(dense + dense.T)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.integers(0, 12), beta=st.sampled_from([0.0, 0.5]))
def test_each_gain_is_the_objective_change(seed: int, budget: int, beta: float) -> None:
    rng = np.random.default_rng(seed)
    n, n_aisles = 18, 4
    w = _random_graph(rng, n)
    caps = np.array([6, 5, 5, 5])
    aisle = np.repeat(np.arange(n_aisles), [5, 5, 4, 4])[rng.permutation(n)]
    movable = rng.random(n) > 0.2
    start = aisle.copy()
    search = MoveSearch(w, aisle, caps, movable, beta=beta)
    moves = search.run(budget)
    assert len(moves) <= budget
    moved = [m.item for m in moves]
    assert len(set(moved)) == len(moved)  # nobody moves twice
    assert all(movable[i] for i in moved)  # anchors never move
    current = start.copy()
    for m in moves:
        assert current[m.item] == m.from_aisle
        before = objective(w, current, beta)
        current[m.item] = m.to_aisle
        assert objective(w, current, beta) - before == pytest.approx(m.gain, abs=1e-9)
        assert m.gain > 0 or m.partner >= 0  # a swap's first half may lose, the pair gains
    assert np.array_equal(current, search.aisle)
    assert (np.bincount(current, minlength=n_aisles) <= caps).all()
    assert (current[~movable] == start[~movable]).all()
    assert objective(w, current, beta) >= objective(w, start, beta) - 1e-12


def test_moves_find_the_obvious_swap() -> None:
    # two cliques {0,1,2} and {3,4,5}, items 2 and 5 swapped, no free space
    w = np.zeros((6, 6))
    for group in ((0, 1, 2), (3, 4, 5)):
        for x in group:
            for y in group:
                if x != y:
                    w[x, y] = 1.0
    aisle = np.array([0, 0, 1, 1, 1, 0])
    search = MoveSearch(sp.csr_matrix(w), aisle, np.array([3, 3]), np.ones(6, bool), beta=0.0)
    moves = search.run(10)
    assert {m.item for m in moves} == {2, 5} and len(moves) == 2
    assert search.aisle.tolist() == [0, 0, 0, 1, 1, 1]
    assert objective(sp.csr_matrix(w), search.aisle, 0.0) == 1.0


def test_budget_parsing() -> None:
    assert parse_budget("10%", 250) == 25
    assert parse_budget("7", 250) == 7
    assert parse_budget(None, 250) == 25
    for bad in ("ten", "-3", "150%"):
        with pytest.raises(ValueError, match="--max-moves"):
            parse_budget(bad, 100)


def test_aisle_order_puts_linked_aisles_next_to_each_other() -> None:
    # a chain 0-3-1-4-2 of strong links, hidden in the numbering
    links = np.zeros((5, 5))
    for a, b in ((0, 3), (3, 1), (1, 4), (4, 2)):
        links[a, b] = links[b, a] = 10.0
    links[0, 1] = links[1, 0] = 1.0
    sizes = np.full(5, 3)
    slot_of = order_groups(links, sizes, np.full(5, 3), np.zeros(5, bool))
    order = np.argsort(slot_of)
    assert path_weight(links, order) == 40.0
    # an anchored group keeps its aisle
    pinned = np.array([False, False, True, False, False])
    slot_of = order_groups(links, sizes, np.full(5, 3), pinned)
    assert slot_of[2] == 2
    assert sorted(slot_of.tolist()) == [0, 1, 2, 3, 4]


def _purity(truth: dict[str, int], got: dict[str, int]) -> float:
    table: dict[int, dict[int, int]] = {}
    for item, g in truth.items():
        cell = table.setdefault(got[item], {})
        cell[g] = cell.get(g, 0) + 1
    return sum(max(c.values()) for c in table.values()) / len(truth)


def test_planted_groups_are_recovered() -> None:
    spec = SyntheticSpec(n_baskets=20_000, n_items=400, n_patterns=10, groups=20,
                         group_rate=0.6, seed=1)
    drawn = generate(spec)
    truth = {item: k for k, group in enumerate(drawn.report["groups"]) for item in group}
    assert len(truth) == 400 and all(len(g) == 20 for g in drawn.report["groups"])
    pairs = pairs_from_baskets(drawn)
    plan = plan_layout(pairs, LayoutParams(aisles=20, capacity=20, weighting="jaccard"))
    got = {s.item: s.aisle for s in plan.slots()}
    # purity: the share of products standing with the majority of their aisle's planted group
    assert _purity(truth, got) >= 0.8
    # and it beats every aisle being a random draw of 20 products by far
    rng = np.random.default_rng(0)
    shuffled = dict(zip(got, rng.permutation(list(got.values())), strict=True))
    assert _purity(truth, shuffled) < 0.3


def test_incremental_plan_keeps_the_store_and_reports_real_gains() -> None:
    drawn = generate(SyntheticSpec(n_baskets=8_000, n_items=120, n_patterns=5, groups=6,
                                   group_rate=0.6, seed=4))
    pairs = pairs_from_baskets(drawn)
    items = [str(x) for x in pairs.items]
    rng = np.random.default_rng(2)
    order = rng.permutation(len(items))
    aisle_of = {items[k]: 1 + r % 6 for r, k in enumerate(order)}
    position_of: dict[str, int] = {}
    for item, a in aisle_of.items():
        position_of[item] = sum(1 for x in position_of if aisle_of[x] == a) + 1
    caps = tuple([22] * 6)
    plan = plan_layout(pairs, LayoutParams(capacities=caps, max_moves="10%",
                                           weighting="jaccard"),
                       current=Current(aisle_of, position_of, "current.csv"))
    assert 0 < len(plan.moves) <= 12
    # the moves serve the objective a full plan is refined on
    assert plan.params["objective_weighting"] == "excess_count"
    affinity = build_affinity(pairs, "excess_count")
    index = {name: k for k, name in enumerate(items)}
    state = np.array([aisle_of[name] - 1 for name in items])
    for m in plan.moves:
        before = objective(affinity.weights, state)
        state[index[m.item]] = m.to_aisle - 1
        assert objective(affinity.weights, state) - before == pytest.approx(m.gain, abs=1e-9)
    final = {s.item: s.aisle for s in plan.slots()}
    assert all(final[name] == state[index[name]] + 1 for name in items)
    assert all(len(a.items) <= a.capacity for a in plan.aisles)
    assert plan.params["objective_after"] > plan.params["objective_before"]
    unmoved = set(items) - {m.item for m in plan.moves}
    assert all(final[x] == aisle_of[x] for x in unmoved)


def test_uneven_capacities_anchors_and_categories_are_kept() -> None:
    drawn = generate(SyntheticSpec(n_baskets=6_000, n_items=60, n_patterns=5, groups=6,
                                   group_rate=0.6, seed=5))
    pairs = pairs_from_baskets(drawn)
    items = [str(x) for x in pairs.items]
    cats = Categories(of={items[0]: "a", items[1]: "a", items[2]: "a", items[3]: "b",
                          items[4]: "c"}, together=("a",), apart=(("b", "c"),))
    fixed = {items[3]: Anchor(2, 1), items[4]: Anchor(5)}
    caps = (20, 8, 14, 6, 12)
    plan = plan_layout(pairs, LayoutParams(capacities=caps), categories=cats, fixed=fixed)
    assert [a.capacity for a in plan.aisles] == list(caps)
    assert all(len(a.items) <= a.capacity for a in plan.aisles)
    assert plan.n_items == len(items)
    assert plan.slot(items[3]).aisle == 2 and plan.slot(items[3]).position == 1
    assert plan.slot(items[4]).aisle == 5
    assert len({plan.slot(x).aisle for x in items[:3]}) == 1
    b_aisles = {s.aisle for s in plan.slots() if s.category == "b"}
    c_aisles = {s.aisle for s in plan.slots() if s.category == "c"}
    assert not b_aisles & c_aisles
    # positions are 1..n in every aisle (the format's reader checks it too)
    assert LayoutPlan.from_json(plan.to_json()) == plan
