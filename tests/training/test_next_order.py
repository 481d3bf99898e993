"""Next-order evaluation (after the purchase): the cases a time cut gives, the metrics by their
definition, and train recording both moments (and not when asked not to or when it cannot)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from basketry.data.synthetic import SyntheticSpec, generate
from basketry.model import load_model
from basketry.model.sequential import AfterPurchase
from basketry.training.next_order import (
    NextOrderCases,
    evaluate_next_order,
    next_order_cases,
)
from basketry.training.pipeline import save_trained, train_and_evaluate
from basketry.training.report import report_html
from tests.mining.test_sequential import T0, history
from tests.model.sequential_model import ORDERS, make_model


def test_a_time_cut_gives_the_customers_on_both_sides():
    baskets = history(ORDERS)
    ids = {str(x): i for i, x in enumerate(baskets.items)}
    cases = next_order_cases(baskets, T0 + np.timedelta64(5, "D"),
                             np.arange(baskets.n_items))
    assert cases.n_customers_before == 5
    # P, Q and R ordered on day 0 and day 7; S and T only before the cut
    assert cases.n_cases == 3
    assert [sorted(x.tolist()) for x in cases.last] == [[ids["a"], ids["b"]],
                                                        [ids["a"], ids["b"]], [ids["a"]]]
    assert [sorted(x.tolist()) for x in cases.target] == [[ids["z"]], [ids["a"], ids["z"]],
                                                          [ids["z"]]]
    assert cases.earlier == [[], [], []]


@pytest.fixture
def after(tmp_path):
    model = load_model(make_model(tmp_path / "m"))
    counts = np.asarray(model.artifact.items.column("count").to_pylist(), dtype=float)
    return model, AfterPurchase(model.artifact.sequential, counts / 11)


def test_metrics_follow_their_definitions(after):
    model, ranking = after
    ids = {str(x): i for i, x in enumerate(model.items)}
    a, c, z = ids["a"], ids["c"], ids["z"]
    # after [a]: a again (1 - (1 - 2/3)) = 0.667 first, then z by a -> z (0.25 * 1)
    assert [x.item for x in ranking.rank(np.array([a]), k=2)] == [a, z]
    cases = NextOrderCases(last=[np.array([a]), np.array([c])],
                           earlier=[[], [np.array([c])]],
                           target=[np.array([z, -1]), np.array([c])], n_customers_before=2)
    metrics = evaluate_next_order(cases, ranking, cart=model, ks=(1, 2))
    seq = metrics["sequential"]
    # first case: z is second (hit@2, recall 1/2: the unknown item is a miss); second: c first
    assert seq["hit_rate@1"] == 0.5 and seq["hit_rate@2"] == 1.0
    assert seq["recall@1"] == pytest.approx((0 + 1) / 2)
    assert seq["recall@2"] == pytest.approx((0.5 + 1) / 2)
    own = metrics["own_frequent"]
    assert own["hit_rate@1"] == 0.5  # a (miss), then c (hit)
    # the cart model never recommends the order's own items: c is never found after [c]
    assert metrics["co_purchase"]["recall@2"] <= 0.25
    assert set(metrics) == {"sequential", "own_frequent", "co_purchase", "popularity"}


@pytest.fixture(scope="module")
def shop():
    return generate(SyntheticSpec(n_baskets=2500, n_items=120, n_patterns=10, days=120,
                                  n_customers=150, seed=3))


def test_train_records_both_moments_and_saves_the_part(shop, tmp_path):
    result = train_and_evaluate(shop, {"min_support": 0.01, "min_confidence": 0.1},
                                test_days=20, tune=False)
    section = result.report["after_purchase"]
    assert section["n_cases"] > 50
    assert set(section["metrics"]) == {"sequential", "own_frequent", "co_purchase",
                                       "popularity"}
    for values in section["metrics"].values():
        assert 0 <= values["recall@10"] <= values["hit_rate@10"] <= 1
    assert result.sequential is not None
    path = save_trained(tmp_path / "model", result)
    part = load_model(path).artifact.sequential
    assert part is not None and part.counts() == result.sequential.counts()
    page = report_html({**result.report, "model_version": "x"})
    assert "After the purchase (next order)" in page and "own most frequent" in page


def test_train_can_be_asked_not_to(shop):
    result = train_and_evaluate(shop, {"min_support": 0.02, "min_confidence": 0.1},
                                test_days=20, tune=False, after_purchase=False)
    assert "after_purchase" not in result.report and result.sequential is None


def test_train_says_why_it_cannot(shop):
    anonymous = dataclasses.replace(shop, customers=None)
    result = train_and_evaluate(anonymous, {"min_support": 0.02, "min_confidence": 0.1},
                                test_days=20, tune=False)
    assert result.report["after_purchase"] == {"skipped": "the data has no customer column"}
    assert result.sequential is None
    result = train_and_evaluate(shop, {"min_support": 0.02, "min_confidence": 0.1},
                                test_fraction=0.2, tune=False)
    assert "random split" in result.report["after_purchase"]["skipped"]


def test_the_workflow_passes_the_settings_to_the_fit(shop, tmp_path):
    from basketry.training.workflow import train_workflow

    mining = {"min_support": 0.02, "min_confidence": 0.1}
    off = train_workflow(shop, tmp_path / "off", mining=mining, test_days=20,
                         scoring="smoothed", after_purchase=False)
    assert "after_purchase" not in off.result.report and off.result.sequential is None
    week = train_workflow(shop, tmp_path / "week", mining=mining, test_days=20,
                          scoring="smoothed", horizon_days=7)
    assert week.result.report["after_purchase"]["sequential"]["horizon_days"] == 7.0


def test_train_refuses_a_horizon_of_zero_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from basketry.cli import app
    from basketry.data import sample_path

    result = CliRunner().invoke(app, ["train", str(sample_path()), "--out",
                                      str(tmp_path / "m"), "--horizon-days", "0", "--no-track"])
    assert result.exit_code == 2
    assert "the horizon must be a number of days > 0, got 0.0" in result.output
    assert not (tmp_path / "m").exists()
