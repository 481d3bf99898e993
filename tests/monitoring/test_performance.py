"""Online performance on a real store (SQLite, and PostgreSQL when configured): the replay is
the offline hide-one protocol with the version that served, the attribution is what was bought
of what was shown, and closed windows are computed once."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from basketry.model import load_model
from basketry.model.protocol import wilson_interval
from basketry.monitoring import RecommendationEvent
from basketry.monitoring.aggregates import VersionSpan
from basketry.monitoring.catalog import ModelCatalog
from basketry.monitoring.performance import (
    Params,
    performance,
    serving_versions,
)
from basketry.monitoring.windows import DAY_US, Window, WindowError
from tests.serving.conftest import ITEMS, write_version

D = 86_400
T0 = 1_700_000_000 // D * D  # a midnight, UTC
EVERYTHING = Params(max_queries=None, max_hidden_per_basket=None)


def event(t: float, rid: str, version: str, basket=("a",), returned=("b", "c", "d")):
    return RecommendationEvent(t, rid, version, "single", tuple(basket), tuple(returned),
                               len(returned), 0, 1.0)


@pytest.fixture
def models(tmp_path: Path) -> tuple[str, str, Path, Path]:
    v1, v2 = write_version(tmp_path / "m1", "v1"), write_version(tmp_path / "m2", "v2")
    return v1, v2, tmp_path / "m1", tmp_path / "m2"


def random_orders(n: int, start: float, seed: int, prefix: str) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        items = rng.sample([*ITEMS, "unknown-1", "unknown-2"], rng.randint(1, 6))
        out.append({"order_id": f"{prefix}{i}", "time": start + 60 * (i + 1), "items": items})
    return out


def brute_force(model, orders: list[dict], ks=(1, 5, 10)) -> dict[str, float]:
    """The protocol spelled out with the model's public ``recommend``, one query at a time."""
    hits = dict.fromkeys(ks, 0)
    ndcg = dict.fromkeys(ks, 0.0)
    n = 0
    for order in orders:
        items = sorted(set(order["items"]))
        if len(items) < 2:
            continue
        for hidden in items:
            n += 1
            offered = [x for x in items if x != hidden and x in model.item_ids]
            answer = [r.item for r in model.recommend(offered, k=max(ks)).items]
            if hidden in answer:
                rank = answer.index(hidden) + 1
                for k in ks:
                    if rank <= k:
                        hits[k] += 1
                        ndcg[k] += 1 / math.log2(rank + 1)
    return {"queries": n, **{f"hits@{k}": hits[k] for k in ks},
            **{f"ndcg_sum@{k}": ndcg[k] for k in ks}}


def test_replay_is_the_hide_one_protocol_with_the_model_that_served(store, models):
    v1, v2, m1, m2 = models
    store.add_events([event(T0 + 10, "r1", v1), event(T0 + D + 10, "r2", v2)])
    day1, day2 = random_orders(40, T0 + 20, 1, "a"), random_orders(30, T0 + D + 20, 2, "b")
    store.add_orders(day1 + day2)
    report = performance(store, ModelCatalog([m1, m2]), window=Window.parse("day"),
                         since=T0, until=T0 + 2 * D, now=T0 + 3 * D, params=EVERYTHING)
    cells = {(c.model_version, c.start_us): c for c in report.cells}
    assert set(cells) == {(v1, T0 * 1_000_000), (v2, (T0 + D) * 1_000_000)}
    for version, path, orders, start in ((v1, m1, day1, T0), (v2, m2, day2, T0 + D)):
        cell = cells[(version, start * 1_000_000)]
        expected = brute_force(load_model(path), orders)
        assert cell.orders == len(orders)
        assert cell.replay["queries"] == expected["queries"]
        for k in (1, 5, 10):
            assert cell.replay[f"hits@{k}"] == expected[f"hits@{k}"]
            assert cell.replay[f"ndcg_sum@{k}"] == pytest.approx(expected[f"ndcg_sum@{k}"])
    doc = report.to_json()
    first = doc["windows"][0]
    hits, n = cells[(v1, T0 * 1_000_000)].replay["hits@10"], first["replay"]["queries"]
    assert first["replay"]["hit_rate@10"]["value"] == pytest.approx(hits / n)
    assert first["replay"]["hit_rate@10"]["ci95"] == pytest.approx(list(wilson_interval(hits, n)))
    assert doc["versions"][v1]["model_available"] is True


def test_attributed_precision_counts_what_was_bought_of_what_was_shown(store, models):
    v1, _, m1, _ = models
    store.add_events([
        event(T0 + 10, "r1", v1, returned=("b", "c", "d")),  # b and d bought by o1
        event(T0 + 11, "r2", v1, returned=("e", "f")),  # nothing bought
        event(T0 + 12, "r3", v1, returned=("g",)),  # g bought by o2
    ])
    store.add_orders([
        {"order_id": "o1", "time": T0 + 100, "items": ["a", "b", "d"],
         "request_ids": ["r1", "r2"]},
        {"order_id": "o2", "time": T0 + 200, "items": ["g", "a"], "request_ids": ["r3"]},
        {"order_id": "o3", "time": T0 + 300, "items": ["a", "b"]},  # names nothing
    ])
    report = performance(store, ModelCatalog([m1]), window=Window.parse("day"), since=T0,
                         until=T0 + D, now=T0 + 2 * D)
    (cell,) = report.cells
    a = cell.attributed
    assert a["orders"] == 2 and a["shown"] == 3
    assert (a["returned@1"], a["bought@1"], a["hit@1"]) == (3, 2, 2)  # b, e, g: b and g
    assert (a["returned@5"], a["bought@5"], a["hit@5"]) == (6, 3, 2)
    figures = report.to_json()["windows"][0]["attributed"]
    assert figures["precision@5"]["value"] == pytest.approx(3 / 6)
    assert figures["hit_share@5"]["value"] == pytest.approx(2 / 3)
    assert cell.orders == 3  # the replay takes every order, named or not


def test_closed_windows_are_stored_and_reused_until_a_late_order_arrives(store, models,
                                                                       no_receipt_margin):
    v1, _, m1, _ = models
    store.add_events([event(T0 + 10, "r1", v1)])
    store.add_orders(random_orders(20, T0 + 20, 3, "a") + random_orders(20, T0 + D + 20, 4, "b"))
    catalog = ModelCatalog([m1])
    day = Window.parse("day")
    first = performance(store, catalog, window=day, since=T0, until=T0 + 3 * D,
                        now=T0 + 4 * D)
    assert (first.reused, first.computed) == (0, 3)
    again = performance(store, catalog, window=day, since=T0, until=T0 + 3 * D, now=T0 + 4 * D)
    assert (again.reused, again.computed) == (3, 0)
    assert again.to_json()["windows"] == first.to_json()["windows"]
    # an order of day 2 arrives late (a batch ingest): day 2 is computed again, with it
    store.add_orders([{"order_id": "late", "time": T0 + D + 5000, "items": ["a", "b", "c"]}])
    late = performance(store, catalog, window=day, since=T0, until=T0 + 3 * D, now=T0 + 4 * D)
    assert (late.reused, late.computed) == (2, 1)
    day2 = next(c for c in late.cells if c.start_us == (T0 + D) * 1_000_000)
    assert day2.orders == 21
    # other protocol parameters are another measure: nothing stored is reused
    other = performance(store, catalog, window=day, since=T0, until=T0 + 3 * D,
                        now=T0 + 4 * D, params=Params(seed=7))
    assert other.reused == 0


def test_the_open_window_is_computed_every_time_and_never_stored(store, models):
    v1, _, m1, _ = models
    store.add_events([event(T0 + 10, "r1", v1)])
    store.add_orders(random_orders(10, T0 + 20, 5, "a"))
    catalog = ModelCatalog([m1])
    for _ in range(2):
        report = performance(store, catalog, window=Window.parse("day"), since=T0,
                             until=T0 + D, now=T0 + 3600)
        assert (report.reused, report.computed) == (0, 1)
        assert report.to_json()["windows"][0]["closed"] is False


def test_a_missing_model_is_said_and_replayed_once_it_is_found(store, models,
                                                               no_receipt_margin):
    v1, _, m1, _ = models
    store.add_events([event(T0 + 10, "r1", v1)])
    store.add_orders(random_orders(10, T0 + 20, 6, "a"))
    kwargs = {"window": Window.parse("day"), "since": T0, "until": T0 + D, "now": T0 + 2 * D}
    blind = performance(store, ModelCatalog([]), **kwargs)
    (cell,) = blind.cells
    assert cell.replay is None and v1 in cell.replay_note and "--model" in cell.replay_note
    assert blind.to_json()["versions"][v1]["model_available"] is False
    found = performance(store, ModelCatalog([m1]), **kwargs)
    assert found.reused == 0 and found.cells[0].replay is not None


def test_orders_before_any_recommendation_have_no_serving_model(store, models):
    v1, _, m1, _ = models
    store.add_orders(random_orders(5, T0 + 20, 7, "early"))
    store.add_events([event(T0 + D + 10, "r1", v1)])
    report = performance(store, ModelCatalog([m1]), window=Window.parse("day"), since=T0,
                         until=T0 + D, now=T0 + 3 * D)
    (cell,) = report.cells
    assert cell.model_version == "" and cell.replay is None
    assert "unknown" in cell.replay_note


def test_windows_of_n_orders_and_the_version_filter(store, models):
    v1, v2, m1, m2 = models
    store.add_events([event(T0 + 10, "r1", v1), event(T0 + 3000, "r2", v2)])
    store.add_orders(random_orders(70, T0 + 20, 8, "a"))  # one a minute: 49 before r2
    report = performance(store, ModelCatalog([m1, m2]), window=Window.parse("25 orders"),
                         since=T0, until=T0 + D, now=T0 + 2 * D)
    per_window: dict[int, int] = {}
    for c in report.cells:
        per_window[c.start_us] = per_window.get(c.start_us, 0) + c.orders
    assert sorted(per_window.values()) == [20, 25, 25]
    only = performance(store, ModelCatalog([m1, m2]), window=Window.parse("25 orders"),
                       since=T0, until=T0 + D, now=T0 + 2 * D, model_version=v2)
    assert {c.model_version for c in only.cells} == {v2}
    assert sum(c.orders for c in only.cells) == 70 - 49


def test_the_serving_version_follows_deployments_and_rollbacks():
    us = 1_000_000
    spans = [VersionSpan("v1", 0, 100 * us, 10), VersionSpan("v2", 40 * us, 60 * us, 5)]
    times = [t * us for t in (-5, 0, 39, 40, 50, 60, 61, 100, 200)]
    got = [spans[i].model_version if i >= 0 else None for i in serving_versions(times, spans)]
    assert got == [None, "v1", "v1", "v2", "v2", "v2", "v1", "v1", "v1"]
    gap = [VersionSpan("v1", 0, 10 * us, 1), VersionSpan("v2", 20 * us, 30 * us, 1)]
    got = [gap[i].model_version for i in serving_versions([15 * us, 35 * us], gap)]
    assert got == ["v1", "v2"]  # in a gap: the version seen last before


@pytest.mark.parametrize(("text", "name", "n"), [
    ("day", "day", 0), ("HOUR", "hour", 0), ("week", "week", 0), ("500", "orders", 500),
    ("500-orders", "orders", 500), ("1 order", "orders", 1),
])
def test_window_parsing(text, name, n):
    w = Window.parse(text)
    assert (w.name, w.n_orders) == (name, n)


@pytest.mark.parametrize("text", ["month", "0", "-3", "1.5", "", "day; drop table orders"])
def test_bad_windows_are_one_line_naming_the_value(text):
    with pytest.raises(WindowError, match="window"):
        Window.parse(text)


def test_weeks_start_on_monday_and_days_at_midnight_utc():
    monday = 1_700_438_400  # 2023-11-20, a Monday, 00:00 UTC
    week = Window.parse("week")
    assert week.start_of((monday + 3 * D + 5) * 1_000_000) == monday * 1_000_000
    assert Window.parse("day").start_of((T0 + 5) * 1_000_000) == T0 * 1_000_000
    assert DAY_US == D * 1_000_000


def test_an_order_received_just_before_a_computation_makes_it_count_again(store, models):
    """A receipt within the margin may belong to a transaction that committed after the
    reads: the window is not trusted, and is computed again next time."""
    v1, _, m1, _ = models
    store.add_events([event(T0 + 10, "r1", v1)])
    store.add_orders(random_orders(5, T0 + 20, 9, "a"))
    kwargs = {"window": Window.parse("day"), "since": T0, "until": T0 + D, "now": T0 + 2 * D}
    first = performance(store, ModelCatalog([m1]), **kwargs)
    again = performance(store, ModelCatalog([m1]), **kwargs)
    assert (first.computed, again.computed, again.reused) == (1, 1, 0)


def test_a_window_stored_meanwhile_by_another_worker_is_no_failure(store, models, monkeypatch,
                                                                   no_receipt_margin):
    """Two workers computing the same closed window: the second one's insert meets the first
    one's rows (the unique key of a stored window) and keeps them, answering its figures."""
    from basketry.monitoring import aggregates

    v1, _, m1, _ = models
    store.add_events([event(T0 + 10, "r1", v1)])
    store.add_orders(random_orders(10, T0 + 20, 10, "a"))
    kwargs = {"window": Window.parse("day"), "since": T0, "until": T0 + D, "now": T0 + 2 * D}
    real = aggregates.replace_windows

    def other_worker_first(connection, window, starts, rows, kinds):
        with store.engine.begin() as other:  # the other worker commits the same rows first
            real(other, window, starts, rows, kinds)
        connection.execute(aggregates.schema.windows.insert(), [
            {"kind": r.kind, "model_version": r.model_version, "window": window,
             "start_us": r.start_us, "end_us": r.end_us, "n": r.n, "metrics": r.metrics,
             "computed_us": r.computed_us} for r in rows])  # ours, as if deleted before theirs

    monkeypatch.setattr(aggregates, "replace_windows", other_worker_first)
    first = performance(store, ModelCatalog([m1]), **kwargs)
    assert first.cells[0].replay is not None
    monkeypatch.setattr(aggregates, "replace_windows", real)
    again = performance(store, ModelCatalog([m1]), **kwargs)
    assert again.reused == 1 and again.to_json()["windows"] == first.to_json()["windows"]
