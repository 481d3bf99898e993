"""Data-drift detectors: their statistics by hand, their false alarm rate on windows without
change (real baskets drawn from a population, not from the detectors' own null model), and
planted changes found, with the items that drive them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import binom, norm

from basketry.model.profile import ReferenceProfile
from basketry.monitoring import _drift_null as null
from basketry.monitoring.drift_data import (
    basket_size_drift,
    data_drift,
    item_drift,
    new_top_items,
    unknown_share_drift,
)
from basketry.monitoring.drift_types import Baskets

SPAN = {"start_us": 1_000, "end_us": 2_000}
EDGES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 31, 51, 101, 201, 501)


class Population:
    """Training baskets with the structure of real ones: overdispersed sizes, four customer
    segments that each favour a different part of the popular items, and bundles (item 2j+1
    follows item 2j half the time). No-change windows are baskets drawn from it at random, so
    the detectors' null model (independent binomial counts) is checked against baskets with
    correlations it does not assume. ``plain``: one segment and no bundles, the items of a
    basket drawn independently (what the item law assumes)."""

    def __init__(self, n_baskets: int = 20_000, n_items: int = 2_000, seed: int = 0,
                 plain: bool = False) -> None:
        rng = np.random.default_rng(seed)
        sizes = 1 + rng.negative_binomial(2, 2 / 9, n_baskets)
        segment = np.zeros(n_baskets, dtype=np.int64) if plain else rng.integers(0, 4, n_baskets)
        base = 1.0 / np.arange(1, n_items + 1) ** 1.1
        owner = np.repeat(np.arange(n_baskets), sizes)
        items = np.empty(owner.shape[0], dtype=np.int64)
        for s in range(4):
            weights = base.copy()
            weights[:200] = base[rng.permutation(200)]
            chosen = segment[owner] == s
            items[chosen] = rng.choice(n_items, size=int(chosen.sum()),
                                       p=weights / weights.sum())
        lead = (items < 100) & (items % 2 == 0) & (rng.random(items.shape[0]) < 0.5) & (
            not plain)
        owner = np.concatenate([owner, owner[lead]])
        items = np.concatenate([items, items[lead] + 1])
        codes = np.unique(owner * n_items + items)  # a basket's items are distinct
        self.indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(codes // n_items, minlength=n_baskets))])
        self.indices = codes % n_items
        self.names = np.array([f"I{j:05d}" for j in range(n_items)], dtype=object)
        self.n_items, self.n = n_items, n_baskets

    def reference(self, version: str = "v-pop") -> ReferenceProfile:
        counts = np.bincount(self.indices, minlength=self.n_items)
        sizes = np.diff(self.indptr)
        edges = [e for e in EDGES if e <= sizes.max()]
        edges.append(next(e for e in EDGES if e > sizes.max()))
        hist, _ = np.histogram(sizes, bins=np.asarray(edges))
        return ReferenceProfile(version, self.names.tolist(),
                                [f"label of {x}" for x in self.names], counts.astype(np.int64),
                                self.n, np.asarray(edges), hist)

    def draw(self, rng: np.random.Generator, n: int) -> list[np.ndarray]:
        """``n`` baskets drawn at random, as arrays of item ids."""
        chosen = rng.integers(0, self.n, size=n)
        return [self.indices[self.indptr[b]:self.indptr[b + 1]] for b in chosen.tolist()]

    def window(self, rng: np.random.Generator, n: int) -> Baskets:
        """``n`` baskets drawn at random, as a window."""
        chosen = rng.integers(0, self.n, size=n)
        starts, sizes = self.indptr[chosen], np.diff(self.indptr)[chosen]
        indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        at = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - starts, sizes)
        return Baskets(indptr, self.names[self.indices[at]].tolist())

    def baskets(self, baskets: list[np.ndarray], extra: list[list[str]] | None = None
                ) -> Baskets:
        """Baskets of item ids (and extra item names per basket) as a window."""
        names = [self.names[b].tolist() + (extra[j] if extra else [])
                 for j, b in enumerate(baskets)]
        indptr = np.concatenate([[0], np.cumsum([len(x) for x in names])]).astype(np.int64)
        return Baskets(indptr, [item for basket in names for item in basket])


@pytest.fixture(scope="module")
def population() -> Population:
    return Population()


def window_of(baskets: list[list[str]]) -> Baskets:
    indptr = np.concatenate([[0], np.cumsum([len(b) for b in baskets])]).astype(np.int64)
    return Baskets(indptr, [item for basket in baskets for item in basket])


def small_reference(counts: list[int], size_edges: list[int], size_counts: list[int],
                    version: str = "v-small") -> ReferenceProfile:
    items = [f"i{j}" for j in range(len(counts))]
    return ReferenceProfile(version, items, [f"Item {j}" for j in range(len(counts))],
                            np.array(counts, dtype=np.int64), int(sum(size_counts)),
                            np.array(size_edges), np.array(size_counts))


def upper_bound(windows: int, rate: float) -> int:
    """Alarms that ``windows`` independent windows exceed with probability under 0.1%."""
    return int(binom.ppf(0.999, windows, rate))


def lower_bound(windows: int, rate: float) -> int:
    return int(binom.ppf(0.001, windows, rate))


# -- the statistics ---------------------------------------------------------------------------


def test_item_drift_statistics_by_hand() -> None:
    reference = small_reference([40, 30, 20, 10], [1, 2, 3], [50, 25])
    window = window_of([["i3"]] * 50 + [["i0", "i1", "i2"]] * 50 + [["i0", "new"]])
    result = item_drift(reference, window, **SPAN)
    q = np.array([0.4, 0.3, 0.2, 0.1])
    p = np.array([51, 50, 50, 50]) / 201  # the unknown item is left to unknown_share
    assert result.detector == "items_orders" and result.statistic == "jensen_shannon"
    assert result.model_version == "v-small" and result.n == 101
    assert result.value == pytest.approx(jensenshannon(p, q))
    assert result.details["l_inf"] == pytest.approx(50 / 201 - 0.1)
    assert result.details["l_inf_item"] == "i3"
    floor_p, floor_q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert result.details["psi"] == pytest.approx(
        float(((floor_p - floor_q) * np.log(floor_p / floor_q)).sum()))
    assert result.details["n_entries"] == 201 and result.details["unknown_entries"] == 1
    assert result.details["n_baskets"] == 101
    assert result.drifted and result.threshold is not None and result.value > result.threshold
    contributors = result.details["top_contributors"]
    assert contributors[0] == {"item": "i3", "label": "Item 3", "reference_share": 0.1,
                               "window_share": pytest.approx(50 / 201),
                               "contribution": pytest.approx(contributors[0]["contribution"])}
    assert contributors[0]["contribution"] > 0
    json.dumps(result.to_json(), allow_nan=False)


def test_basket_size_bins_the_training_edges_with_an_open_last_bin() -> None:
    reference = small_reference([10, 10, 10], [1, 2, 3, 5], [10, 20, 20])
    # sizes 1, 2, 3, 4 and 7: 7 is past the last edge and counts in the last bin [3, 5)
    window = window_of([["i0"], ["i0", "i1"], ["i0", "i1", "i2"], ["a", "b", "c", "d"],
                        [f"x{j}" for j in range(7)]])
    result = basket_size_drift(reference, window, **SPAN)
    p, q = np.array([1, 1, 3]) / 5, np.array([10, 20, 20]) / 50
    assert result.value == pytest.approx(jensenshannon(p, q))
    assert result.details["mean_size"] == pytest.approx(17 / 5)
    assert result.details["reference_mean_size"] == pytest.approx(30 / 50)
    bins = result.details["bins"]
    assert [b["bin"] for b in bins] == ["1", "2", "3+"]
    assert [b["window_share"] for b in bins] == pytest.approx([0.2, 0.2, 0.6])
    assert [b["reference_share"] for b in bins] == pytest.approx([0.2, 0.4, 0.4])
    assert bins[0]["contribution"] == 0.0 and bins[2]["contribution"] > 0
    assert result.threshold is not None and result.n == 5


def test_unknown_share_threshold_is_the_wilson_bound_of_the_tolerated_share() -> None:
    reference = small_reference([50, 50], [1, 3], [100])
    window = window_of([["i0", "i1"]] * 190 + [["i0", "new1"]] * 6 + [["new2"]] * 4)
    result = unknown_share_drift(reference, window, false_alarm_rate=0.01, **SPAN)
    n_entries = 190 * 2 + 12 + 4
    assert result.value == pytest.approx(10 / n_entries)
    assert result.threshold == pytest.approx(
        0.01 + norm.ppf(0.99) * math.sqrt(0.01 * 0.99 / n_entries))
    assert result.drifted  # 2.5% unknown, the bound at this size is about 2.2%
    assert result.details["top_unknown"][0] == {
        "item": "new1", "count": 6, "window_share": 6 / n_entries}
    tolerant = unknown_share_drift(reference, window, tolerated_share=0.02, **SPAN)
    assert not tolerant.drifted


def test_new_top_items_lists_entrants_and_ties_do_not_enter() -> None:
    # training top 2: i0, i1; i2 and i3 follow
    reference = small_reference([100, 90, 50, 10], [1, 3], [200])
    window = window_of([["i0", "i3"], ["i3", "new"], ["i3", "new"], ["i2", "i1"]])
    result = new_top_items(reference, window, k=2, **SPAN)
    # window counts: i3 3, new 2, i0 1, i1 1, i2 1: i3 and "new" take the top 2
    entrants = result.details["entrants"]
    assert [e["item"] for e in entrants] == ["i3", "new"]
    assert entrants[0]["known"] and entrants[0]["reference_rank"] == 4
    assert entrants[0]["label"] == "Item 3"
    assert not entrants[1]["known"] and entrants[1]["reference_rank"] is None
    assert entrants[1]["window_share"] == pytest.approx(2 / 8)
    # weighted by rank: i3 first (weight 1), "new" second (1/2)
    assert result.value == 1.5 and result.details["k"] == 2 and result.details["count"] == 2
    assert result.statistic == "weighted_entrants"
    # a tie with a training top item goes to the training top item
    tie = new_top_items(reference, window_of([["i0", "i2"], ["i1", "i2"], ["i0", "i1"]]),
                        k=2, **SPAN)
    assert tie.value == 0.0 and tie.details["entrants"] == []


def test_an_empty_window_is_no_data_not_an_error() -> None:
    reference = small_reference([10, 5], [1, 3], [15])
    empty = Baskets(np.zeros(1, dtype=np.int64), [])
    results = data_drift(reference, empty, empty, **SPAN)
    assert [r.detector for r in results] == [
        "items_orders", "items_requests", "basket_size", "unknown_share", "new_top_items"]
    for result in results:
        assert result.n == 0 and not result.drifted and result.threshold is None
        assert result.details["reason"]
        json.dumps(result.to_json(), allow_nan=False)
    assert results[1].details["reason"] == "no recommendation requests in the window"
    only_unknown = item_drift(reference, window_of([["new"]]), **SPAN)
    assert only_unknown.n == 1 and not only_unknown.drifted
    assert only_unknown.details["reason"].startswith("none of the window's items")
    assert len(data_drift(reference, window_of([["i0"]]), None, **SPAN)) == 4
    # orders without items (an order of services only, say): measured as such, no error
    itemless = data_drift(reference, window_of([[], []]), None, **SPAN)
    assert [r.n for r in itemless] == [2, 2, 2, 2]
    assert all(not r.drifted for r in itemless)
    for result in itemless:
        json.dumps(result.to_json(), allow_nan=False)


# -- calibration --------------------------------------------------------------------------------


def test_thresholds_shrink_with_the_window_and_are_reproducible(population: Population
                                                                ) -> None:
    reference = population.reference("v-thresholds")
    rng = np.random.default_rng(3)
    small, large = population.window(rng, 100), population.window(rng, 3000)
    for detector in (item_drift, basket_size_drift):
        at_small = detector(reference, small, **SPAN).threshold
        at_large = detector(reference, large, **SPAN).threshold
        assert at_small is not None and at_large is not None and at_small > at_large
    first = data_drift(reference, large, small, seed=4, **SPAN)
    null._PREPARED.clear()  # computed again from scratch, the same
    again = data_drift(reference, large, small, seed=4, **SPAN)
    assert [r.to_json() for r in first] == [r.to_json() for r in again]


def test_a_month_of_similar_windows_reuses_its_calibrations(population: Population) -> None:
    reference = population.reference("v-reuse")
    rng = np.random.default_rng(5)
    for n in rng.integers(1900, 2100, 30).tolist():
        data_drift(reference, population.window(rng, n), **SPAN)
    # five kinds of calibration, each computed for a few size buckets, not 30 times
    assert len(null.prepared(reference).cache) <= 5 * 6


def no_change_alarms(population: Population, reference: ReferenceProfile, rate: float,
                     windows: int, seed: int, **settings: float) -> dict[str, int]:
    """Alarms per detector over ``windows`` windows of 30 to 3,000 baskets drawn at random
    from the training population (orders, and requests drawn the same way)."""
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(math.log(30), math.log(3000), windows)).astype(int)
    alarms: dict[str, int] = {}
    for w, n in enumerate(sizes.tolist()):
        orders = population.window(rng, n)
        if settings:
            results = [item_drift(reference, orders, false_alarm_rate=rate, **SPAN,
                                  **settings)]
        else:
            results = data_drift(reference, orders, population.window(rng, n),
                                 false_alarm_rate=rate, seed=w, **SPAN)
        for result in results:
            alarms[result.detector] = alarms.get(result.detector, 0) + result.drifted
    return alarms


@pytest.mark.parametrize("rate", [0.05, 0.01])
def test_no_change_windows_alarm_at_most_at_the_false_alarm_rate(population: Population,
                                                                 rate: float) -> None:
    """300 windows of baskets with bundles and customer segments: the share of alarms is at
    most the setting, within a binomial tolerance (the item threshold widens the independent
    law for co-occurring items, and the rank statistic is discrete, so both may alarm less);
    the basket sizes of independent baskets are exactly multinomial: within the tolerance
    both ways."""
    windows = 300
    alarms = no_change_alarms(population, population.reference("v-null"), rate, windows, 11)
    for detector in ("items_orders", "items_requests", "basket_size", "new_top_items"):
        assert alarms[detector] <= upper_bound(windows, rate), alarms
    assert alarms["basket_size"] >= lower_bound(windows, rate), alarms
    assert alarms["unknown_share"] == 0


def test_the_item_law_is_exact_when_its_assumption_holds() -> None:
    """Items drawn independently into baskets of varying sizes: without widening, the item
    threshold alarms at the setting, within a binomial tolerance both ways."""
    population = Population(plain=True, seed=1)
    windows, rate = 400, 0.05
    alarms = no_change_alarms(population, population.reference("v-plain"), rate, windows, 13,
                              dispersion=1.0)
    assert lower_bound(windows, rate) <= alarms["items_orders"] <= upper_bound(windows, rate)


def test_unknown_share_at_the_tolerated_share_alarms_at_the_rate(population: Population
                                                                 ) -> None:
    reference = population.reference("v-unknown")
    rng = np.random.default_rng(12)
    windows, rate, tolerated = 400, 0.05, 0.01
    alarms = 0
    for n in rng.integers(30, 3000, windows).tolist():
        window = population.window(rng, n)
        names = np.array(window.items, dtype=object)
        replaced = rng.random(names.shape[0]) < tolerated
        names[replaced] = [f"new-{j}" for j in range(int(replaced.sum()))]
        alarms += unknown_share_drift(reference, Baskets(window.indptr, names.tolist()),
                                      false_alarm_rate=rate, tolerated_share=tolerated,
                                      **SPAN).drifted
    assert lower_bound(windows, rate) <= alarms <= upper_bound(windows, rate)


# -- planted changes ----------------------------------------------------------------------------


def add_item(baskets: list[np.ndarray], item: int, times: int,
             rng: np.random.Generator) -> list[np.ndarray]:
    """``item`` added to ``times`` baskets that do not hold it."""
    lacking = [j for j, b in enumerate(baskets) if item not in b]
    for j in rng.choice(lacking, size=min(times, len(lacking)), replace=False).tolist():
        baskets[j] = np.append(baskets[j], item)
    return baskets


def test_top_items_half_again_as_popular_is_found_with_its_items(population: Population
                                                                 ) -> None:
    reference = population.reference("v-top")
    rng = np.random.default_rng(21)
    baskets = population.draw(rng, 1000)
    top = [int(i) for i in np.argsort(-reference.item_counts, kind="stable")[:10]]
    for item in top:
        held = sum(item in b for b in baskets)
        baskets = add_item(baskets, item, held // 2, rng)
    result = item_drift(reference, population.baskets(baskets), **SPAN)
    assert result.drifted and result.threshold is not None
    # beyond the noise floor, more than twice what a window without change reaches
    floor = result.details["expected_value"] ** 2
    assert result.value ** 2 - floor > 2 * (result.threshold ** 2 - floor)
    named = [c["item"] for c in result.details["top_contributors"]]
    assert set(named[:5]) <= {reference.items[i] for i in top}
    first = result.details["top_contributors"][0]
    assert first["window_share"] > first["reference_share"]
    assert first["label"] == f"label of {first['item']}"
    json.dumps(result.to_json(), allow_nan=False)


def test_rare_items_taking_five_percent_are_found(population: Population) -> None:
    reference = population.reference("v-rare")
    rng = np.random.default_rng(22)
    baskets = population.draw(rng, 1000)
    entries = sum(len(b) for b in baskets)
    rare = list(range(1000, 1020))  # known to the model, rare in training
    for item in rare:
        baskets = add_item(baskets, item, int(0.05 * entries / len(rare)), rng)
    result = item_drift(reference, population.baskets(baskets), **SPAN)
    assert result.drifted
    named = {c["item"] for c in result.details["top_contributors"]}
    assert len(named & {reference.items[i] for i in rare}) >= 8


def test_new_items_taking_five_percent_are_found(population: Population) -> None:
    reference = population.reference("v-new")
    rng = np.random.default_rng(23)
    baskets = population.draw(rng, 1000)
    entries = sum(len(b) for b in baskets)
    extra: list[list[str]] = [[] for _ in baskets]
    for j in range(2):  # two new products, each in about 2.5% of the occurrences
        for b in rng.choice(len(baskets), size=int(0.025 * entries), replace=False).tolist():
            extra[b].append(f"NEW-{j}")
    results = {r.detector: r for r in data_drift(reference, population.baskets(baskets, extra),
                                                 **SPAN)}
    unknown = results["unknown_share"]
    assert unknown.drifted and unknown.value == pytest.approx(0.05, abs=0.005)
    assert {u["item"] for u in unknown.details["top_unknown"]} == {"NEW-0", "NEW-1"}
    top = results["new_top_items"]
    assert top.drifted
    entrants = {e["item"]: e for e in top.details["entrants"]}
    assert {"NEW-0", "NEW-1"} <= set(entrants)
    assert not entrants["NEW-0"]["known"] and entrants["NEW-0"]["window_rank"] <= 10


def test_a_basket_size_change_is_found(population: Population) -> None:
    reference = population.reference("v-size")
    rng = np.random.default_rng(24)
    baskets = [b for b in population.draw(rng, 3000) if len(b) >= 3][:1000]
    result = basket_size_drift(reference, population.baskets(baskets), **SPAN)
    assert result.drifted
    assert result.details["mean_size"] > result.details["reference_mean_size"]
    assert result.details["bins"][0]["window_share"] == 0.0  # size 1 baskets are gone
