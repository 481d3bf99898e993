"""Concept drift on a real mined model: planted co-purchases, a window where one is broken
(its consequent decoupled from its antecedent), unchanged windows, the served
recommendations' rules, and the change detector on the online hit rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from basketry.model import load_model
from basketry.monitoring.drift_concept import (
    HitRateWindow,
    benjamini_hochberg,
    broken_rule_mass,
    concept_drift,
    explaining_rules,
    hit_rate_changes,
    rule_confidence_drift,
    rule_set,
    rule_tests,
)
from basketry.monitoring.drift_types import Baskets, ServedRecommendations

pytest.importorskip("scipy")
pytest.importorskip("river")

N_ITEMS = 40
# planted co-purchases: (antecedent, consequent, P(antecedent), P(consequent | antecedent))
PAIRS = [(0, 1, 0.3, 0.7), (2, 3, 0.25, 0.6), (4, 5, 0.2, 0.8)]


def name(i: int) -> str:
    return f"i{i:02d}"


def generate(n: int, seed: int, broken: tuple[int, ...] = ()) -> list[list[str]]:
    """Orders of independent items plus the planted pairs; a pair in ``broken`` keeps its
    consequent's overall rate but draws it independently of the antecedent."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0.02, 0.15, N_ITEMS)
    held = rng.random((n, N_ITEMS)) < base
    for k, (a, b, p_a, p_b) in enumerate(PAIRS):
        has_a = rng.random(n) < p_a
        held[:, a] = has_a
        if k in broken:
            held[:, b] = rng.random(n) < p_a * p_b + (1 - p_a) * base[b]
        else:
            held[:, b] = np.where(has_a, rng.random(n) < p_b, rng.random(n) < base[b])
    return [[name(j) for j in np.flatnonzero(row)] for row in held]


def window(rows: list[list[str]]) -> Baskets:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    return Baskets(indptr, [x for r in rows for x in r])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    from basketry.data.baskets import Baskets as TrainingBaskets
    from basketry.mining import AssociationMiner
    from basketry.training.artifact import save_model

    train = TrainingBaskets.from_lists(generate(20_000, 1),
                                       items=[name(i) for i in range(N_ITEMS)])
    miner = AssociationMiner(min_support=0.005, min_confidence=0.1).fit(train)
    path: Path = tmp_path_factory.mktemp("concept") / "model"
    save_model(path, miner, train)
    return load_model(path)


def rows_of(model, antecedent: set[str], consequent: str, *, within: bool = False,
            ) -> list[int]:
    """Rows of the rules ``antecedent -> consequent`` (``within``: every antecedent holding
    ``antecedent``)."""
    rs = rule_set(model)
    out = []
    for row in range(rs.n_rules):
        a = {model.items[i] for i in rs.a_values[rs.a_offsets[row]:rs.a_offsets[row + 1]]}
        c = [model.items[i] for i in rs.c_values[rs.c_offsets[row]:rs.c_offsets[row + 1]]]
        if (antecedent <= a if within else a == antecedent) and c == [consequent]:
            out.append(row)
    return out


def test_window_counts_are_the_orders_counts(model):
    orders = generate(500, 7)
    t = rule_tests(model, window(orders))
    rs = rule_set(model)
    for row in range(0, rs.n_rules, max(rs.n_rules // 50, 1)):
        a = {model.items[i] for i in rs.a_values[rs.a_offsets[row]:rs.a_offsets[row + 1]]}
        c = {model.items[i] for i in rs.c_values[rs.c_offsets[row]:rs.c_offsets[row + 1]]}
        assert t.n_a[row] == sum(a <= set(o) for o in orders)
        assert t.n_ac[row] == sum(a | c <= set(o) for o in orders)
        assert t.n_c[row] == sum(c <= set(o) for o in orders)


def test_a_broken_rule_is_found_with_its_q_value(model):
    result = rule_confidence_drift(model, window(generate(3_000, 5, broken=(0,))),
                                   start_us=10, end_us=20, fdr=0.05)
    assert result.drifted and result.detector == "rule_confidence" and result.n == 3_000
    assert result.value > 0 and result.details["rules_rejected"] >= 1
    broken = {(tuple(r["antecedent"]), tuple(r["consequent"])): r
              for r in result.details["broken_rules"]}
    rule = broken[(("i00",), ("i01",))]
    assert rule["q_value"] <= 0.05 and rule["p_value"] <= rule["q_value"]
    assert rule["window_confidence"] < 0.5 < rule["reference_confidence"]
    assert rule["n_a"] > 500 and rule["window_lift"] < rule["reference_lift"]
    # the pairs left alone are not among the broken rules
    assert (("i02",), ("i03",)) not in broken and (("i04",), ("i05",)) not in broken
    json.dumps(result.to_json())


def test_unchanged_stream_rejects_at_most_the_fdr_share(model):
    """Under no change, BH rejects anything with probability at most the FDR: over 60
    unchanged windows (fresh orders of the training distribution), at most 5% alarm."""
    fdr = 0.05
    alarmed, rejected, tested = 0, 0, 0
    for seed in range(60):
        t = rule_tests(model, window(generate(2_000, 1_000 + seed)), fdr=fdr)
        alarmed += bool(t.rejected.any())
        rejected += int(t.rejected.sum())
        tested += int(t.tested.sum())
    assert tested > 60 * 100  # a real number of rules tested per window
    assert alarmed <= fdr * 60
    assert rejected <= fdr * tested


def test_untestable_rules_are_counted(model):
    result = rule_confidence_drift(model, window(generate(30, 3)), start_us=0, end_us=1,
                                   min_support_orders=10)
    d = result.details
    assert d["rules_tested"] + d["rules_untestable"] == d["rules"] == rule_set(model).n_rules
    assert d["rules_untestable"] > d["rules_tested"]


def test_a_window_without_orders_is_not_a_drift(model):
    empty = window([])
    served = ServedRecommendations(empty, np.zeros(0, np.int64), [])
    results = concept_drift(model, empty, served, start_us=5, end_us=6)
    assert [r.detector for r in results] == ["rule_confidence", "broken_rule_mass"]
    for r in results:
        assert r.n == 0 and not r.drifted and "no orders" in r.details["reason"]
        assert r.model_version == model.model_version and (r.start_us, r.end_us) == (5, 6)


def served_for(model, requests: list[list[str]]) -> ServedRecommendations:
    """What serving would record: each request's rule-based answers."""
    basket, returned = [], []
    for b, items in enumerate(requests):
        ranked = model.rank(items, k=5)
        for item in ranked.items[:ranked.from_rules]:
            basket.append(b)
            returned.append(model.items[item])
    return ServedRecommendations(window(requests), np.array(basket, dtype=np.int64), returned)


def test_explaining_rules_are_the_scorers(model):
    requests = [o[:-1] for o in generate(400, 11) if len(o) > 1] + [["nope", "i00"], []]
    served = served_for(model, requests)
    want = []
    for items in requests:
        ranked = model.rank(items, k=5)
        want += [int(model._rule_row[r]) for r in ranked.ranks[:ranked.from_rules]]
    assert len(want) > 500
    assert explaining_rules(model, served).tolist() == want
    # an item served that the model does not know, or no rule explains, maps to -1
    odd = ServedRecommendations(window([["i00"], ["i39"]]), np.array([0, 1, 0]),
                                ["unknown", "i38", "i01"])
    rows = explaining_rules(model, odd)
    assert rows[0] == -1 and rows[2] in rows_of(model, {"i00"}, "i01")


def test_broken_rule_mass(model):
    requests = [o[:-1] for o in generate(600, 12) if len(o) > 1]
    served = served_for(model, requests)
    # what a decoupled pair breaks: every rule from i00 (with anything) to i01
    broken = rows_of(model, {"i00"}, "i01", within=True)
    assert len(broken) > 1
    rows = explaining_rules(model, served)
    share = np.isin(rows, broken).sum() / (rows >= 0).sum()
    assert share > 0
    result = broken_rule_mass(model, served, np.array(broken), start_us=0, end_us=1,
                              max_share=share / 2)
    assert result.value == pytest.approx(share) and result.drifted
    assert result.details["served_by_broken_rules"] == np.isin(rows, broken).sum()
    assert not broken_rule_mass(model, served, np.array(broken), start_us=0, end_us=1,
                                max_share=share).drifted
    assert result.details["broken_rules"][0]["consequent"] == ["i01"]
    none = broken_rule_mass(model, served, np.zeros(0, np.int64), start_us=0, end_us=1)
    assert none.value == 0 and not none.drifted and none.n == result.n


def test_concept_drift_on_a_broken_window(model):
    orders = generate(3_000, 21, broken=(0,))
    served = served_for(model, [o[:-1] for o in orders if len(o) > 1])
    confidence, mass = concept_drift(model, window(orders), served, start_us=0, end_us=1)
    assert confidence.drifted and mass.drifted
    assert mass.details["served_by_broken_rules"] > 0
    json.dumps([confidence.to_json(), mass.to_json()])


def test_binomial_option_and_bad_settings(model):
    t = rule_tests(model, window(generate(2_000, 5, broken=(0,))), test="binomial")
    assert t.rejected.any()
    with pytest.raises(ValueError, match="unknown rule test"):
        rule_tests(model, window(generate(10, 5)), test="chi2")
    with pytest.raises(ValueError, match="fdr"):
        rule_tests(model, window(generate(10, 5)), fdr=0)


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted 0.01 0.03 0.04 0.20 -> 0.04 0.06 0.0533 0.20 -> running min from the end
    assert benjamini_hochberg(p).tolist() == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2])


def series(rates: list[float], queries: int = 4_000, seed: int = 0) -> list[HitRateWindow]:
    rng = np.random.default_rng(seed)
    return [HitRateWindow(i * 100, (i + 1) * 100, int(rng.binomial(queries, r)), queries)
            for i, r in enumerate(rates)]


def test_hit_rate_drop_is_detected_where_it_happens():
    results = hit_rate_changes(series([0.30] * 20 + [0.24] * 10), model_version="v")
    drifted = [i for i, r in enumerate(results) if r.drifted]
    assert drifted and drifted[0] in (20, 21)
    assert all(r.detector == "hit_rate_change" and r.n == 4_000 for r in results)
    first = results[drifted[0]]
    assert first.details["reference_hit_rate"] > first.value
    json.dumps(first.to_json())


def test_hit_rate_steady_or_rising_does_not_alarm():
    steady = hit_rate_changes(series([0.30] * 60, seed=1), model_version="v")
    assert not any(r.drifted for r in steady)
    rising = hit_rate_changes(series([0.30] * 20 + [0.36] * 10, seed=2), model_version="v")
    assert not any(r.drifted for r in rising)
    assert any(r.details["increases_detected"] for r in rising)


def test_hit_rate_window_without_queries():
    results = hit_rate_changes([(0, 1, 0, 0), (1, 2, 30, 100)], model_version="v")
    assert results[0].n == 0 and not results[0].drifted and results[0].details["reason"]
    assert results[1].value == 0.3 and results[1].details["reference_hit_rate"] is None


def test_runs_without_numba(model):
    """A serving install has no numba: the detectors run on numpy, scipy and river alone (the
    model's scoring kernel from its ahead-of-time module)."""
    from tests.model.test_aot_scoring import _require_aot

    _require_aot()
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["numba"] = None
        import numpy as np
        from basketry.model import load_model
        from basketry.monitoring.drift_concept import concept_drift, hit_rate_changes
        from basketry.monitoring.drift_types import Baskets, ServedRecommendations
        model = load_model({str(model.path)!r})
        orders = Baskets(np.array([0, 2, 4, 5]), ["i00", "i01", "i00", "i03", "i04"])
        served = ServedRecommendations(orders, np.array([0, 1]), ["i05", "i01"])
        results = concept_drift(model, orders, served, start_us=0, end_us=1)
        results += hit_rate_changes([(0, 1, 3, 10), (1, 2, 4, 10)], model_version="v")
        assert len(results) == 4 and results[1].n == 2, results
        print(json.dumps(sorted(m for m in ("numba", "llvmlite") if sys.modules.get(m))))
    """)
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "BASKETRY_KERNELS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_hit_rate_day_to_day_variation_is_not_a_change():
    """Windows of 50,000 queries whose true rate varies by a point from day to day: taken as
    independent queries that variation is significant (ADWIN alarms); weighed as at most
    ``max_queries`` each, the window does not alarm, and a real drop still does."""
    rng = np.random.default_rng(3)
    rates = 0.30 + rng.normal(0, 0.01, 60)
    days = [HitRateWindow(i, i + 1, int(rng.binomial(50_000, r)), 50_000)
            for i, r in enumerate(rates)]
    assert not any(r.drifted for r in hit_rate_changes(days, model_version="v"))
    unweighted = hit_rate_changes(days, model_version="v", max_queries=50_000)
    assert any(r.drifted for r in unweighted)
    dropped = days + [HitRateWindow(60 + i, 61 + i, 12_500, 50_000) for i in range(3)]
    assert any(r.drifted for r in hit_rate_changes(dropped, model_version="v")[60:62])


def test_a_model_without_rules(tmp_path):
    from basketry.model import items_table, write_model
    from tests.model.conftest import make_rules

    write_model(tmp_path / "m", items=items_table(np.array(["a", "b"], dtype=object),
                                                  np.array([5, 3]),
                                                  np.array([None, None], dtype=object)),
                rules=make_rules([], n=10), n_baskets=10, parameters={})
    empty = load_model(tmp_path / "m")
    orders = Baskets(np.array([0, 2, 3]), ["a", "b", "a"])
    served = ServedRecommendations(orders, np.array([0]), ["b"])
    confidence, mass = concept_drift(empty, orders, served, start_us=0, end_us=1)
    assert not confidence.drifted and confidence.details["reason"] == "the model has no rules"
    assert not mass.drifted and mass.n == 0 and mass.details["unexplained"] == 1
