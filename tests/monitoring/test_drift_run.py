"""Drift end to end on a real store (SQLite, and PostgreSQL when configured): a model trained
on generated baskets, production's requests and orders recorded, the detectors run per window
and version, closed windows stored once, and the alerts opened by a watch cycle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from basketry.data import Baskets
from basketry.data.synthetic import SyntheticSpec, generate
from basketry.mining import AssociationMiner
from basketry.model import load_model
from basketry.monitoring import RecommendationEvent
from basketry.monitoring.alert_settings import AlertSettings
from basketry.monitoring.alerts import Alerts
from basketry.monitoring.catalog import ModelCatalog
from basketry.monitoring.drift import drift
from basketry.monitoring.watch import run_cycle
from basketry.monitoring.windows import Window
from basketry.training.artifact import save_model

D = 86_400
T0 = 1_700_000_000 // D * D
PER_DAY = 600


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, list[list[str]]]:
    """A model trained on the first baskets of a generated stream, and the rest of it."""
    baskets = generate(SyntheticSpec(n_baskets=8_000, n_items=250, n_patterns=25,
                                     pattern_rate=0.5, days=30, seed=3))
    lists = [baskets.basket(b) for b in range(baskets.n_baskets)]
    train = Baskets.from_lists(lists[:5_000])
    miner = AssociationMiner(min_support=0.004, min_confidence=0.2, n_jobs=1).fit(train)
    path = tmp_path_factory.mktemp("drift") / "model"
    save_model(path, miner, train)
    return path, lists[5_000:]


def _record(store, model, days: list[list[list[str]]], tag: str = "", seed: int = 0) -> None:
    """Each day's baskets as orders, each after a recommendation for two of its items (a cart
    on its way: a random part of the final basket); ``tag`` keeps request and order ids apart
    between calls."""
    rng = np.random.default_rng(seed)
    events, orders = [], []
    for d, day in enumerate(days):
        for i, items in enumerate(day):
            t = T0 + d * D + 60 + i * (D - 120) / len(day)
            rid = f"r{tag}{d}-{i}"
            cart = [items[j] for j in sorted(rng.choice(len(items), min(2, len(items)),
                                                        replace=False))]
            answer = model.recommend(cart, k=5)
            returned = tuple(r.item for r in answer.items)
            events.append(RecommendationEvent(t, rid, model.version, "single", tuple(cart),
                                              returned, answer.from_rules,
                                              len(returned) - answer.from_rules, 1.0))
            orders.append({"order_id": f"o{tag}{d}-{i}", "time": t + 30, "items": items,
                           "request_ids": [rid]})
    store.add_events(events)
    store.add_orders(orders)


def _shifted(day: list[list[str]], items: list[str], seed: int) -> list[list[str]]:
    """The same baskets with every item swapped for another of the catalogue (a permutation
    of popularity): the rules no longer hold and the item distribution moves."""
    rng = np.random.default_rng(seed)
    swap = dict(zip(items, rng.permutation(items), strict=True))
    return [sorted({swap.get(x, x) for x in basket}) for basket in day]


def test_drift_is_found_where_it_was_planted_and_nowhere_else(store, world, no_receipt_margin):
    path, rest = world
    model = load_model(path)
    days = [rest[i * PER_DAY:(i + 1) * PER_DAY] for i in range(4)]
    days[3] = _shifted(days[3], list(model.items), seed=1)
    _record(store, model, days)
    catalog = ModelCatalog([path])
    report = drift(store, catalog, window=Window.parse("day"), since=T0, until=T0 + 4 * D,
                   now=T0 + 5 * D)
    drifted = {(r["feature"], (r["start_us"] // 1_000_000 - T0) // D) for r in report.drifted}
    assert ("items_orders", 3) in drifted and ("rule_confidence", 3) in drifted
    assert not {d for _, d in drifted} & {0, 1, 2}, drifted  # no false alarm before
    by_feature = {r["feature"] for r in report.results}
    assert {"items_orders", "items_requests", "basket_size", "unknown_share", "new_top_items",
            "rule_confidence", "broken_rule_mass", "hit_rate_change"} <= by_feature
    assert report.computed == 4 and report.reused == 0
    again = drift(store, catalog, window=Window.parse("day"), since=T0, until=T0 + 4 * D,
                  now=T0 + 5 * D)
    assert (again.reused, again.computed) == (4, 0)
    strip = [{k: v for k, v in r.items() if k != "computed_us"} for r in again.results
             if r["feature"] != "hit_rate_change"]
    first = [{k: v for k, v in r.items() if k != "computed_us"} for r in report.results
             if r["feature"] != "hit_rate_change"]
    assert strip == first


def test_a_model_without_its_reference_is_said_and_concept_drift_still_runs(store, tmp_path):
    from tests.serving.conftest import write_version

    version = write_version(tmp_path / "old", "v1")  # a hand-made manifest: no dataset profile
    model = load_model(tmp_path / "old")
    _record(store, model, [[["a", "b", "c"], ["a", "b"], ["e", "a"]]])
    report = drift(store, ModelCatalog([tmp_path / "old"]), window=Window.parse("day"),
                   since=T0, until=T0 + D, now=T0 + 2 * D)
    assert "no training profile" in report.notes[version]
    assert {r["feature"] for r in report.results} >= {"rule_confidence", "broken_rule_mass"}
    assert "items_orders" not in {r["feature"] for r in report.results}


def test_a_watch_cycle_opens_one_alert_per_drifted_condition(store, world):
    path, rest = world
    model = load_model(path)
    days = [rest[i * PER_DAY:(i + 1) * PER_DAY] for i in range(3)]
    days[2] = _shifted(days[2], list(model.items), seed=2)
    _record(store, model, days)
    alerts = Alerts.from_settings(store, AlertSettings())
    try:
        first = run_cycle(store, ModelCatalog([path]), alerts, window=Window.parse("day"),
                          now=T0 + 3 * D + 600)
        assert first.opened >= 2  # items_orders and rule_confidence at least
        kinds = {a.kind for a in alerts.open_alerts()}
        assert {"items_orders", "rule_confidence"} <= kinds
        again = run_cycle(store, ModelCatalog([path]), alerts, window=Window.parse("day"),
                          now=T0 + 3 * D + 900)
        assert again.opened == 0  # the same conditions: no new alert
        assert {a.kind for a in alerts.open_alerts()} == kinds
    finally:
        alerts.close()


def test_a_retired_versions_alerts_do_not_open_again(store, world, tmp_path):
    """Its drifted windows stay in the watch's span for weeks: only serving versions count."""
    path, rest = world
    model = load_model(path)
    days = [rest[i * PER_DAY:(i + 1) * PER_DAY] for i in range(3)]
    days[2] = _shifted(days[2], list(model.items), seed=2)
    _record(store, model, days)
    newer = tmp_path / "newer"
    miner = AssociationMiner(min_support=0.004, min_confidence=0.25, n_jobs=1).fit(
        Baskets.from_lists(rest[:4_000]))
    save_model(newer, miner, Baskets.from_lists(rest[:4_000]))
    second = load_model(newer)
    assert second.version != model.version
    later = [rest[i * PER_DAY:(i + 1) * PER_DAY] for i in range(3, 5)]
    events_store_days = [[]] * 3 + later  # the second version serves days 3 and 4
    _record(store, second, events_store_days, tag="s", seed=1)
    catalog = ModelCatalog([path, newer])
    alerts = Alerts.from_settings(store, AlertSettings())
    try:
        first = run_cycle(store, catalog, alerts, window=Window.parse("day"), now=T0 + 3 * D)
        assert {a.model_version for a in first.opened_alerts} == {model.version}
        # two days and more after the first version's last answer: retired
        retired = run_cycle(store, catalog, alerts, window=Window.parse("day"),
                            now=T0 + 5 * D + 600)
        assert retired.resolved >= first.opened
        assert not [a for a in alerts.open_alerts() if a.model_version == model.version]
        again = run_cycle(store, catalog, alerts, window=Window.parse("day"),
                          now=T0 + 5 * D + 900)
        assert not [a for a in again.opened_alerts if a.model_version == model.version]
        assert not [a for a in alerts.open_alerts() if a.model_version == model.version]
    finally:
        alerts.close()

