"""The history a retrain learns from: the data and the store's orders merged, the window cut."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from basketry.data import Baskets, DataError
from basketry.training import history

DAY = 86_400


def dated(rows, ids, days, labels=None):
    b = Baskets.from_lists(rows)
    stamps = (np.array(days, dtype=np.float64) * DAY * 1e9).astype("datetime64[ns]")
    out = replace(b, timestamps=stamps, basket_ids=np.array(ids, dtype=object), source="d.csv")
    if labels is not None:
        out = replace(out, labels=np.array([labels.get(i) for i in out.items], dtype=object))
    return out


def as_sets(b: Baskets):
    return [set(b.basket(i)) for i in range(b.n_baskets)]


def test_merge_keeps_one_vocabulary_sorted_ids_and_counts_known_orders_once():
    data = dated([["b", "a"], ["c"]], ["t1", "t2"], [1, 2], labels={"a": "Apple", "c": "Cherry"})
    orders = history.orders_as_baskets(
        [{"order_id": "t2", "time": 2 * DAY, "items": ["c"]},  # already in the data
         {"order_id": "o3", "time": 3 * DAY, "items": ["z", "a", "d"]}], source="store")
    merged, duplicates = history.merge(data, orders)
    assert duplicates == 1
    assert merged.n_baskets == 3
    assert list(merged.items) == ["a", "b", "c", "d", "z"]
    assert as_sets(merged) == [{"a", "b"}, {"c"}, {"a", "d", "z"}]
    for i in range(merged.n_baskets):  # ids ascending within each basket
        ids = merged.indices[merged.indptr[i]:merged.indptr[i + 1]]
        assert list(ids) == sorted(ids)
    assert list(merged.labels) == ["Apple", None, "Cherry", None, None]
    assert list(merged.basket_ids) == ["t1", "t2", "o3"]
    assert merged.report["orders_from_store"] == 1
    assert merged.report["orders_already_in_data"] == 1


def test_merging_orders_into_data_without_timestamps_says_what_is_missing():
    data = Baskets.from_lists([["a"], ["b"]])
    orders = history.orders_as_baskets([{"order_id": "o", "time": 1.0, "items": ["a"]}], "s")
    with pytest.raises(DataError, match="no timestamps"):
        history.merge(data, orders)


def test_the_window_is_the_last_days_up_to_the_end():
    b = dated([["a"]] * 5, [f"t{i}" for i in range(5)], [1, 2, 3, 4, 5])
    assert history.cut(b, history.window_of(b, None, None)).n_baskets == 5
    last2 = history.cut(b, history.window_of(b, 2, None))
    assert list(last2.basket_ids) == ["t3", "t4"]
    until = np.datetime64(round(3 * DAY * 1e9), "ns")
    w = history.window_of(b, 2, until)
    assert list(history.cut(b, w).basket_ids) == ["t1", "t2"]
    assert w.describe() == "1970-01-02T00:00:00Z to 1970-01-04T00:00:00Z"


@pytest.mark.parametrize("days", [0, -1])
def test_a_window_of_no_days_is_refused(days):
    b = dated([["a"]], ["t"], [1])
    with pytest.raises(ValueError, match="positive number of days"):
        history.window_of(b, days, None)


def test_a_window_of_days_needs_timestamps():
    b = Baskets.from_lists([["a"]])
    with pytest.raises(DataError, match="no timestamps"):
        history.window_of(b, 30, None)
    assert history.window_of(b, None, None).describe() == "all of it: no timestamps"
