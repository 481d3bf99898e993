from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from basketry.model import (
    ModelError,
    RuleScorer,
    ScoringArgumentError,
    items_table,
    load_model,
    scoring_spec,
)
from tests.model.conftest import make_rules


def test_recommend_explains_rule_and_label(tiny_model):
    model = load_model(tiny_model)
    rec = model.recommend(["a"], k=2)
    assert [r.item for r in rec.items] == ["c", "b"]  # same confidence: higher lift first
    first = rec.items[0]
    assert first.label is None and not first.fallback
    assert first.rule.antecedent == ("a",) and first.rule.consequent == "c"
    assert first.score == first.rule.confidence == 0.6
    assert rec.items[1].label == "Bread"
    assert rec.model_version == model.version


def test_larger_antecedent_and_best_rule_per_item(tiny_model):
    model = load_model(tiny_model)
    rec = model.recommend(["b", "a"], k=3)
    assert [r.item for r in rec.items] == ["d", "c", "e"]
    assert rec.items[0].rule.antecedent == ("a", "b")
    # c is reached by a->c (0.6) and a b->c (0.667): the best rule explains it
    assert rec.items[1].rule.antecedent == ("a", "b")
    assert rec.items[2].fallback and rec.items[2].rule is None
    assert rec.items[2].score == 0.6  # support of the most popular remaining item


def test_unknown_items_are_ignored_and_reported(tiny_model):
    model = load_model(tiny_model)
    rec = model.recommend(["zzz", "a", "zzz", "yyy"], k=1)
    assert rec.unknown == ["zzz", "yyy"]
    assert rec.items[0].item == "c"


def test_empty_basket_gets_popular_items(tiny_model):
    rec = load_model(tiny_model).recommend([], k=3)
    assert [r.item for r in rec.items] == ["e", "a", "b"]
    assert all(r.fallback for r in rec.items)


def test_exclude_and_k_bounds(tiny_model):
    model = load_model(tiny_model)
    rec = model.recommend(["a"], k=10, exclude=["c", "nope"])
    items = [r.item for r in rec.items]
    assert "c" not in items and "a" not in items
    assert len(items) == 3  # only b, d, e remain
    # k must be a whole number >= 1; above the number of items, every item that may be
    # recommended is (and nothing is sized by k)
    for bad in (0, -1, True, 2.0, "3", None):
        with pytest.raises(ScoringArgumentError, match="k must be"):
            model.recommend(["a"], k=bad)
    assert model.recommend(["a"], k=10**12) == model.recommend(["a"], k=5)
    assert model.associations("b", k=2**62).items == model.recommend(["b"], k=5).items


def test_associations_is_single_item_basket(tiny_model):
    model = load_model(tiny_model)
    assert model.associations("b", k=2) == model.recommend(["b"], k=2)


def test_model_without_rules_still_answers(tmp_path):
    items = items_table(np.array(["x", "y"], dtype=object), np.array([1, 3]))
    rules = make_rules([], n=4)
    scorer = RuleScorer(items, rules, n_baskets=4)
    assert [r.item for r in scorer.recommend(["x"], k=2).items] == ["y"]


def naive_recommend(rows, counts, basket, k, scoring=None):
    """Reference: scan every rule, score it and combine per item by the documented method."""
    spec = scoring_spec(scoring)
    m, combine = spec.get("prior_weight", 0.0), spec.get("combine", 0.0)
    best: dict[int, tuple] = {}
    evidence: dict[int, float] = {}
    for row, (ante, cons, nxy, nx, ny) in enumerate(rows):
        if len(cons) != 1 or not set(ante) <= basket or cons[0] in basket:
            continue
        sy = ny / 100
        conf = nxy / nx
        lift = conf / sy
        smoothed = (nxy + m * sy) / (nx + m)
        if spec["method"] == "lift_product":  # log scale: log s_y + smoothed log-lift
            excess = max(np.log(smoothed) - np.log(sy), 0.0)
            score = np.log(sy) + (1 - combine) * excess
        else:
            score = {"confidence": conf, "lift": lift, "smoothed": smoothed,
                     "one_scale": smoothed}[spec["method"]]
            excess = max(score - sy, 0.0)
        key = (-score, -lift, -nxy, len(ante), row)
        evidence[cons[0]] = evidence.get(cons[0], 0.0) + excess
        if cons[0] not in best or key < best[cons[0]]:
            best[cons[0]] = key
    # rank of each item's best rule in the global order, then the combined score
    global_order = sorted(best.values())
    combined = {i: (-(-key[0] + combine * evidence[i]), global_order.index(key))
                for i, key in best.items()}
    order = np.argsort(-np.asarray(counts), kind="stable").tolist()
    if spec["method"] in ("one_scale", "lift_product"):
        # the empty rule: an item is a rule candidate only above its base rate, and every
        # candidate competes with the popular items by score (a rule's item first on a tie)
        n = 100
        floor = {i: counts[i] / n for i in range(len(counts))}
        if spec["method"] == "lift_product":
            floor = {i: np.log(f) for i, f in floor.items()}
        rule_items = [i for i in best if -combined[i][0] > floor[i]]
        merged = [(combined[i][0], 0, combined[i][1], i) for i in rule_items] + [
            (-floor[i], 1, p, i) for p, i in enumerate(order)
            if i not in basket and i not in rule_items]
        return [entry[3] for entry in sorted(merged)[:k]]
    ranked = sorted(best, key=combined.__getitem__)[:k]
    popular = [i for i in order if i not in basket and i not in ranked]
    return ranked + popular[: k - len(ranked)]


rule_rows = st.lists(
    st.tuples(
        st.lists(st.integers(0, 7), min_size=1, max_size=3, unique=True),
        st.integers(0, 7),
        st.integers(1, 20),
        st.integers(0, 30),
        st.integers(0, 40),
    ),
    max_size=30,
)


SCORINGS = [
    {"method": "confidence"},
    {"method": "lift"},
    None,  # the default: smoothed
    {"method": "smoothed", "prior_weight": 0.0, "combine": 0.0},
    {"method": "smoothed", "prior_weight": 3.0, "combine": 0.5},
    {"method": "one_scale", "prior_weight": 0.0, "combine": 0.0},
    {"method": "one_scale", "prior_weight": 3.0, "combine": 0.5},
    {"method": "one_scale", "prior_weight": 40.0, "combine": 0.1},
    {"method": "lift_product", "prior_weight": 0.0, "combine": 0.0},
    {"method": "lift_product", "prior_weight": 5.0, "combine": 1.0},
    {"method": "lift_product", "prior_weight": 20.0, "combine": 0.3},
]


@pytest.mark.parametrize("scoring", SCORINGS)
@settings(max_examples=60, deadline=None)
@given(rows=rule_rows, basket=st.sets(st.integers(0, 7), max_size=6), k=st.integers(1, 8))
def test_indexed_scoring_equals_naive_scan(scoring, rows, basket, k):
    counts = [10 + 3 * i % 7 for i in range(8)]
    clean = [(ante, [c], nxy, nxy + nx, nxy + ny) for ante, c, nxy, nx, ny in rows if c not in ante]
    items = items_table(np.array([f"i{i}" for i in range(8)], dtype=object), np.array(counts))
    scorer = RuleScorer(items, make_rules(clean, n=100), n_baskets=100, scoring=scoring)
    got = [scorer.item_ids[r.item] for r in scorer.recommend([f"i{i}" for i in basket], k).items]
    assert got == naive_recommend(clean, counts, basket, k, scoring)
    # the batch path (offline evaluation) gives the same answers as ids
    ids = sorted(basket)
    top, from_rules = scorer.top_items(np.array([0, len(ids)]), np.array(ids), k)
    assert [i for i in top[0].tolist() if i >= 0] == got
    recs = scorer.recommend([f"i{i}" for i in basket], k)
    assert from_rules[0] == recs.from_rules
    # the id form (the serving application's path) is the same answer
    ranked = scorer.rank([f"i{i}" for i in basket], k)
    assert ranked.items == got and ranked.from_rules == recs.from_rules
    assert ranked.scores == [r.score for r in recs.items]
    assert [scorer.explain(r) if r >= 0 else None for r in ranked.ranks] == \
        [r.rule for r in recs.items]
    # banned ids are never recommended, and the rest keeps its order
    banned = got[:2]
    again = scorer.rank([f"i{i}" for i in basket], k, banned=np.array(banned, dtype=np.int32))
    assert not set(again.items) & set(banned)
    assert [i for i in got if i not in banned] == again.items[: len(got) - len(banned)]


def test_rules_table_from_multiple_chunks(tiny_model):
    model = load_model(tiny_model)
    rules = pa.concat_tables([model.artifact.rules.slice(0, 3), model.artifact.rules.slice(3)])
    scorer = RuleScorer(model.artifact.items, rules, n_baskets=100, scoring=model.scoring)
    assert scorer.recommend(["a", "b"], 3) .items == model.recommend(["a", "b"], 3).items


def test_large_basket_grows_the_walk_stacks():
    """More fired antecedents and candidates than the kernel's initial buffers (64) hold."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(3_000):
        ante = sorted(rng.choice(150, size=int(rng.integers(1, 4)), replace=False).tolist())
        cons = int(rng.integers(0, 150))
        if cons not in ante:
            nxy = int(rng.integers(1, 20))
            rows.append((ante, [cons], nxy, nxy + int(rng.integers(0, 30)), nxy + 5))
    counts = rng.integers(1, 100, size=150).tolist()
    items = items_table(np.array([f"i{i}" for i in range(150)], dtype=object), np.array(counts))
    for scoring in SCORINGS:
        scorer = RuleScorer(items, make_rules(rows, n=100), n_baskets=100, scoring=scoring)
        basket = set(range(0, 150, 2))
        got = [scorer.item_ids[r.item]
               for r in scorer.recommend([f"i{i}" for i in basket], 75).items]
        assert got == naive_recommend(rows, counts, basket, 75, scoring)


def test_concurrent_threads_get_the_same_answers(tiny_model):
    from concurrent.futures import ThreadPoolExecutor

    model = load_model(tiny_model)
    baskets = [["a"], ["b"], ["a", "b"], ["d"], [], ["a", "b", "zzz"]] * 200
    expected = [model.recommend(b, k=3) for b in baskets]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda b: model.recommend(b, k=3), baskets))
    assert got == expected


def test_default_scoring_smooths_and_combines(tmp_path):
    """The default method by hand on the tiny rules: m = 10, combine = 0.01."""
    items = items_table(np.array(["a", "b", "c", "d", "e"], dtype=object),
                        np.array([50, 40, 30, 20, 60]))
    rules = make_rules([([0], [1], 30, 50, 40), ([0], [2], 30, 50, 30),
                        ([0, 1], [2], 20, 30, 30), ([0, 1], [3], 27, 30, 30)], n=100)
    scorer = RuleScorer(items, rules, n_baskets=100)
    assert scorer.scoring == {"method": "smoothed", "prior_weight": 10.0, "combine": 0.01}
    # a -> b: (30 + 10 * 0.4) / (50 + 10) beats a -> c: (30 + 10 * 0.3) / 60 though the
    # confidences tie
    rec = scorer.recommend(["a"], k=2)
    assert [r.item for r in rec.items] == ["b", "c"]
    b_score = 34 / 60 + 0.01 * (34 / 60 - 0.4)
    assert rec.items[0].score == pytest.approx(b_score)
    # basket a b: d by a b -> d (29 / 40); c by a b -> c (23 / 40) plus a -> c's evidence
    rec = scorer.recommend(["a", "b"], k=2)
    assert [r.item for r in rec.items] == ["d", "c"]
    c_score = 23 / 40 + 0.01 * ((23 / 40 - 0.3) + (33 / 60 - 0.3))
    assert rec.items[1].score == pytest.approx(c_score)
    assert rec.items[1].rule.antecedent == ("a", "b")


def test_scoring_object_is_validated():
    assert scoring_spec("confidence") == {"method": "confidence"}
    assert scoring_spec({"method": "smoothed", "combine": 0}) == {
        "method": "smoothed", "prior_weight": 10.0, "combine": 0.0}
    for bad in ({"method": "nope"}, {"method": "confidence", "prior_weight": 1},
                {"method": "smoothed", "combine": -1}, {"method": "smoothed", "combine": "x"}):
        with pytest.raises(ModelError):
            scoring_spec(bad)


def _weak_rule_scorer(method: str) -> RuleScorer:
    """e is in 60 of 100 baskets; a -> b holds with confidence 0.5 (b's base rate 0.2, a real
    association) and a -> c with confidence 0.2 (below c's base rate 0.3: a weak rule)."""
    items = items_table(np.array(["a", "b", "c", "d", "e"], dtype=object),
                        np.array([50, 20, 30, 10, 60]))
    rules = make_rules([([0], [1], 25, 50, 20), ([0], [2], 10, 50, 30)], n=100)
    return RuleScorer(items, rules, n_baskets=100,
                      scoring={"method": method, "prior_weight": 0.0, "combine": 0.0})


def test_one_scale_lets_a_popular_item_outrank_a_weak_rule():
    rec = _weak_rule_scorer("one_scale").recommend(["a"], k=4)
    # b: its rule (0.5) beats every base rate; e: popular (0.6) beats b's 0.5 too; c: its rule
    # (0.2) says less than its base rate (0.3), so c ranks as a popular item, after e and b
    assert [(r.item, r.score, r.fallback) for r in rec.items] == [
        ("e", 0.6, True), ("b", 0.5, False), ("c", 0.3, True), ("d", 0.1, True)]
    assert rec.items[1].rule.antecedent == ("a",)
    assert rec.from_rules == 1
    # the former semantics on the same rules: every rule's item first, popularity fills
    old = _weak_rule_scorer("smoothed").recommend(["a"], k=4)
    assert [(r.item, r.fallback) for r in old.items] == [
        ("b", False), ("c", False), ("e", True), ("d", True)]


def test_one_scale_rule_wins_a_tie_with_a_popular_item():
    items = items_table(np.array(["a", "b", "e"], dtype=object), np.array([50, 20, 50]))
    rules = make_rules([([0], [1], 25, 50, 20)], n=100)  # a -> b: 0.5, e's base rate 0.5
    scorer = RuleScorer(items, rules, n_baskets=100,
                        scoring={"method": "one_scale", "prior_weight": 0, "combine": 0})
    assert [r.item for r in scorer.recommend(["a"], k=2).items] == ["b", "e"]
    top, from_rules = scorer.top_items(np.array([0, 1]), np.array([0]), 2)
    assert top.tolist() == [[1, 2]] and from_rules.tolist() == [1]



def test_lift_product_scores_stay_probabilities_with_many_fired_rules():
    """A basket of 40 items each pointing to y with lift 50: the product of the lifts is far
    beyond a double's range, the answer's score is capped at 1 and y still comes first."""
    n_items = 42
    items = items_table(np.array([f"i{i}" for i in range(n_items)], dtype=object),
                        np.array([100] * 40 + [10, 500]))
    rules = make_rules([([x], [40], 50, 100, 10) for x in range(40)], n=10_000)
    scorer = RuleScorer(items, rules, n_baskets=10_000,
                        scoring={"method": "lift_product", "prior_weight": 0, "combine": 1})
    rec = scorer.recommend([f"i{i}" for i in range(40)], k=2)
    assert [(r.item, r.score, r.fallback) for r in rec.items] == [
        ("i40", 1.0, False), ("i41", 0.05, True)]
