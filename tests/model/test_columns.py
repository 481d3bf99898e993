"""Arrow arrays built from buffers (basketry.model.columns) are the arrays pa.array builds, and a
model written from them has the same bytes and version as one written from pa.array's."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from basketry.model import ModelContentError, items_table, write_model
from basketry.model.columns import list_array, list_parts, primitive_array, string_array, view
from basketry.model.format import ITEMS_SCHEMA
from basketry.model.validate import check_items

from .conftest import make_rules

STRINGS = ["a", "", "é", "Zürich", "日本", "x" * 300, "tab\there", "😀", "a\x00b"]


@pytest.mark.parametrize("values", [STRINGS, [], ["only"], [None, "b", None], [None]])
def test_string_array_is_what_pa_array_builds(values):
    built = string_array(values)
    expected = pa.array(values, pa.string())
    assert built.equals(expected)
    assert built.null_count == expected.null_count
    assert built.to_pylist() == values
    built.validate(full=True)


@pytest.mark.parametrize("type_, dtype", [(pa.int32(), np.int32), (pa.int64(), np.int64),
                                          (pa.float64(), np.float64)])
def test_primitive_array_is_what_pa_array_builds(type_, dtype):
    values = np.array([3, -1, 0, 7, 2**20], dtype=dtype)
    built = primitive_array(values, type_)
    assert built.equals(pa.array(values, type_))
    assert built.buffers()[0] is None  # no validity bitmap, as pa.array leaves none
    built.validate(full=True)
    assert primitive_array(np.array([], dtype=dtype), type_).equals(pa.array([], type_))
    # a non-contiguous input is copied, not read with the wrong stride
    assert primitive_array(values[::2], type_).to_pylist() == values[::2].tolist()


def test_primitive_array_refuses_a_matrix():
    with pytest.raises(ValueError, match="one-dimensional"):
        primitive_array(np.zeros((2, 2)), pa.float64())


def test_list_array_is_what_from_arrays_builds():
    offsets = np.array([0, 1, 3, 3, 6], dtype=np.int64)
    values = np.array([4, 1, 2, 0, 5, 9], dtype=np.int32)
    built = list_array(offsets, values, pa.int32())
    expected = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))
    assert built.equals(expected)
    assert built.to_pylist() == [[4], [1, 2], [], [0, 5, 9]]
    built.validate(full=True)
    empty = list_array(np.zeros(1, dtype=np.int64), np.array([], dtype=np.int32), pa.int32())
    assert len(empty) == 0 and empty.type == pa.list_(pa.int32())
    assert len(list_array(np.array([], np.int64), np.array([], np.int32), pa.int32())) == 0


def test_list_array_refuses_offsets_that_do_not_fit():
    values = np.arange(3, dtype=np.int32)
    with pytest.raises(ValueError, match="start at 0"):
        list_array(np.array([1, 3]), values, pa.int32())
    with pytest.raises(ValueError, match="start at 0 and fit in int32"):
        list_array(np.array([0, 2**31]), values, pa.int32())
    with pytest.raises(ValueError, match="past 3 values"):
        list_array(np.array([0, 4]), values, pa.int32())


def test_view_reads_slices_and_chunks_as_to_numpy_does():
    array = pa.array(np.arange(10, dtype=np.int64))
    for piece in (array, array.slice(3, 4), array.slice(10, 0)):
        assert np.array_equal(view(piece), piece.to_numpy())
    chunked = pa.chunked_array([array.slice(0, 3), array.slice(5, 2)])
    assert view(chunked).tolist() == [0, 1, 2, 5, 6]
    assert view(pa.chunked_array([], pa.float64())).dtype == np.float64
    with_null = pa.array([1.0, None, 3.0])  # through to_numpy: NaN for the null
    assert np.isnan(view(with_null)[1])
    assert not view(array).flags.writeable  # a view of Arrow's memory, never written


def test_list_parts_of_a_sliced_list_array():
    lists = pa.array([[1], [2, 3], [4, 5, 6], [7]], pa.list_(pa.int32()))
    offsets, values = list_parts(lists.slice(1, 2))
    assert offsets.tolist() == [0, 2, 5]
    assert values.tolist() == [2, 3, 4, 5, 6]
    offsets, values = list_parts(lists.slice(4, 0))
    assert offsets.tolist() == [0] and values.size == 0


def test_duplicate_items_named_as_before():
    # the first item (by first row) that repeats, at its second row
    items = items_table(["a", "b", "b", "a", "c"], [1, 1, 1, 1, 1])
    with pytest.raises(ModelContentError, match=r"row 3: the item 'a' is also in row 0"):
        check_items(items, 10, "items table")


def _old_items_table(items, counts, labels):
    """items_table as it was written with pa.array, before the buffers."""
    return pa.table({
        "item": pa.array([str(x) for x in items], pa.string()),
        "label": pa.array([None if x is None or x != x else str(x) for x in labels],
                          pa.string()),
        "count": pa.array(np.asarray(counts, dtype=np.int64)),
    }, schema=ITEMS_SCHEMA)


def test_a_model_from_buffers_has_the_bytes_of_one_from_pa_array(tmp_path):
    items = np.array(["a", "b", "c", "é", "e"], dtype=object)
    counts = np.array([50, 40, 30, 20, 60])
    labels = np.array(["Apple", None, float("nan"), "Éclair", "Eggs"], dtype=object)
    rules = make_rules([([0], [1], 30, 50, 40), ([0, 1], [2], 20, 30, 30),
                        ([3], [4], 10, 20, 60)], 100)
    written = {}
    for name, table in (("old", _old_items_table(items, counts, labels)),
                        ("new", items_table(items, counts, labels))):
        path = write_model(tmp_path / name, items=table, rules=rules, n_baskets=100,
                           parameters={"min_support": 0.1})
        written[name] = json.loads((path / "manifest.json").read_text())
    assert written["new"]["files"] == written["old"]["files"]
    assert written["new"]["model_version"] == written["old"]["model_version"]
