"""A directory of Parquet files read as one long table: the same baskets and fingerprint as the
same rows in one file, whatever the split into files and row groups; hive partitions; baskets
split across files; bad directories refused with one line naming the file and column."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import DataError, fingerprint, read_baskets
from basketry.data.baskets import Baskets


def _table(rows: list[tuple], *, int_ids: bool, with_extra: bool) -> pa.Table:
    columns = {
        "transaction_id": pa.array([r[0] if int_ids else f"T{r[0]}" for r in rows],
                                   pa.int64() if int_ids else pa.string()),
        "item": pa.array([r[1] for r in rows], pa.string()),
    }
    if with_extra:
        columns["timestamp"] = pa.array(
            [None if r[2] is None else np.datetime64(r[2], "s") for r in rows],
            pa.timestamp("s"))
        columns["customer_id"] = pa.array([r[3] for r in rows], pa.string())
        columns["description"] = pa.array(
            [None if r[3] is None else f"{r[1]} by {r[3]}" for r in rows], pa.string())
        columns["day"] = pa.array(  # a string timestamp, parsed (ISO dates)
            [None if r[2] is None else f"2024-01-{1 + r[2] % 28:02d}" for r in rows])
    return pa.table(columns)


def _assert_same(a: Baskets, b: Baskets) -> None:
    assert fingerprint(a) == fingerprint(b)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert list(a.items) == list(b.items)
    for name in ("timestamps", "basket_ids", "customers", "labels"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    report = {k: v for k, v in b.report.items() if k != "files_read"}
    assert a.report == report


def _write_split(table: pa.Table, root: Path, cuts: list[int], row_group: int) -> None:
    """``table`` as files cut at ``cuts`` (zero-padded names: path order is row order)."""
    bounds = [0, *sorted(set(cuts)), table.num_rows]
    root.mkdir()
    for k, (lo, hi) in enumerate(pairwise(bounds)):
        pq.write_table(table.slice(lo, hi - lo), root / f"part-{k:03d}.parquet",
                       row_group_size=row_group)


_rows = st.lists(
    st.tuples(
        st.integers(0, 30),  # transaction
        st.sampled_from(["a", "b", " c ", "d", "", "bread, white", "é"]),  # item
        st.one_of(st.none(), st.integers(1_600_000_000, 1_700_000_000)),  # timestamp
        st.one_of(st.none(), st.sampled_from(["u1", "u2", "u3"])),  # customer
    ),
    min_size=1, max_size=80,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=_rows, cuts=st.lists(st.integers(0, 80), max_size=4),
       row_group=st.integers(1, 20), int_ids=st.booleans(), with_extra=st.booleans())
def test_same_baskets_as_one_file(tmp_path_factory, rows, cuts, row_group, int_ids,
                                  with_extra):
    """Rows split over files and row groups read as the one file of those rows: baskets in
    first-appearance order, a transaction over several files one basket, the same report."""
    if not any(r[1].strip() for r in rows):
        rows = [*rows, (0, "a", None, None)]  # a table with no item is refused by both
    tmp = tmp_path_factory.mktemp("split")
    table = _table(rows, int_ids=int_ids, with_extra=with_extra)
    pq.write_table(table, tmp / "one.parquet")
    cuts = [c for c in cuts if c < len(rows)]  # a cut at 0: an empty first file
    _write_split(table, tmp / "dir", cuts, row_group)
    flags = {"customer_col": "customer_id", "label_col": "description"} if with_extra else {}
    one = read_baskets(tmp / "one.parquet", **flags)
    many = read_baskets(tmp / "dir", **flags)
    _assert_same(one, many)
    assert many.report["files_read"] == len(set(cuts)) + 1
    if with_extra and any(r[2] is not None for r in rows):
        _assert_same(read_baskets(tmp / "one.parquet", timestamp_col="day"),
                     read_baskets(tmp / "dir", timestamp_col="day"))


@pytest.mark.parametrize("int_items", [True, False])
def test_numbers_with_nulls_as_one_file(tmp_path, int_items):
    """Integer ids and items, quantities and timestamps with nulls (the columns written into one
    buffer each as they are read): the same as one file, the filters included."""
    n = 200
    rng = np.random.default_rng(1)
    quantity = rng.integers(-1, 4, n).astype(float)
    quantity[::7] = np.nan
    stamps = pa.array(rng.integers(0, 10**9, n).astype("datetime64[s]"),
                      mask=rng.random(n) < 0.2)
    items = rng.integers(0, 9, n)
    table = pa.table({
        "transaction_id": pa.array(rng.integers(0, 40, n), pa.int32()),
        "item": pa.array(items) if int_items else pa.array([f"i{i}" for i in items]),
        "quantity": pa.array(quantity, from_pandas=True),
        "timestamp": stamps,
    })
    pq.write_table(table, tmp_path / "one.parquet")
    _write_split(table, tmp_path / "d", [50, 51, 120], row_group=13)
    one = read_baskets(tmp_path / "one.parquet", quantity_col="quantity")
    many = read_baskets(tmp_path / "d", quantity_col="quantity")
    _assert_same(one, many)
    assert many.report["dropped_nonpositive_quantity"] > 0
    assert many.report["null_timestamps"] > 0


def test_hive_partitions_are_columns_and_order(tmp_path):
    """``date=...`` directories read in path order; the partition value is a column (here the
    timestamp), and a transaction split across two days is one basket."""
    root = tmp_path / "sales"
    days = {"2024-01-02": [(7, "milk"), (8, "tea")],
            "2024-01-01": [(5, "bread"), (7, "jam")]}
    for day, rows in days.items():
        (root / f"date={day}").mkdir(parents=True)
        pq.write_table(pa.table({"transaction_id": [r[0] for r in rows],
                                 "item": [r[1] for r in rows]}),
                       root / f"date={day}" / "part-0.parquet")
    (root / "_SUCCESS").write_bytes(b"")  # Spark's marker: skipped
    b = read_baskets(root, timestamp_col="date")
    assert list(b.basket_ids) == ["5", "7", "8"]
    assert [b.basket(k) for k in range(3)] == [["bread"], ["jam", "milk"], ["tea"]]
    assert [str(t)[:10] for t in b.timestamps] == ["2024-01-01", "2024-01-01", "2024-01-02"]
    assert b.report["columns"]["timestamp"] == "date"
    assert b.report["files_read"] == 2


def test_progress_reaches_one(tmp_path):
    table = _table([(k % 5, "abc"[k % 3], None, None) for k in range(50)], int_ids=True,
                   with_extra=False)
    _write_split(table, tmp_path / "d", [10, 30], row_group=7)
    seen: list[float] = []
    read_baskets(tmp_path / "d", progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen) and len(seen) > 3


def _two_files(root: Path, second: pa.Table) -> Path:
    root.mkdir()
    pq.write_table(pa.table({"transaction_id": [1, 2], "item": ["a", "b"]}),
                   root / "a.parquet")
    pq.write_table(second, root / "b.parquet")
    return root


@pytest.mark.parametrize("second, says", [
    (pa.table({"transaction_id": [3]}), "no column 'item'"),
    (pa.table({"transaction_id": [3], "item": [4]}), "column 'item' is int64"),
    (pa.table({"transaction_id": ["x"], "item": ["a"]}), "column 'transaction_id' is string"),
])
def test_mismatched_schemas_name_the_file_and_column(tmp_path, second, says):
    root = _two_files(tmp_path / "d", second)
    with pytest.raises(DataError, match=says) as e:
        read_baskets(root)
    assert str(root / "b.parquet") in str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_row_is_named_in_its_file(tmp_path):
    """A row the reader refuses is named by its file and its row there (counted from 0)."""
    root = tmp_path / "d"
    root.mkdir()
    for k, days in enumerate([["2024-01-01", "2024-01-02"], ["2024-01-03", "soon", "x"]]):
        pq.write_table(pa.table({"transaction_id": list(range(len(days))),
                                 "item": ["a"] * len(days), "timestamp": days}),
                       root / f"part-{k}.parquet")
    with pytest.raises(DataError, match=r"part-1\.parquet: row 1: cannot parse timestamp 'soon'"):
        read_baskets(root)


def test_widths_and_string_encodings_may_differ(tmp_path):
    """int32 against int64 ids, large_string against dictionary strings: one table."""
    second = pa.table({"transaction_id": pa.array([2, 3], pa.int32()),
                       "item": pa.array(["b", "c"], pa.large_string())})
    b = read_baskets(_two_files(tmp_path / "d", second))
    assert [b.basket(k) for k in range(b.n_baskets)] == [["a"], ["b"], ["c"]]


def test_bad_directories(tmp_path):
    empty = tmp_path / "empty"
    (empty / "_logs").mkdir(parents=True)
    with pytest.raises(DataError, match="is a directory with no file to read"):
        read_baskets(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pq.write_table(pa.table({"transaction_id": [1], "item": ["a"]}), mixed / "a.parquet")
    (mixed / "notes.csv").write_text("transaction_id,item\n1,a\n")
    with pytest.raises(DataError, match=r"notes\.csv: not a Parquet file"):
        read_baskets(mixed)
    with pytest.raises(DataError, match="is a directory; only a directory of Parquet"):
        read_baskets(mixed, format="long-csv")


def test_cli_mines_a_directory_and_writes_nothing_for_a_bad_one(tmp_path):
    root = tmp_path / "d"
    table = _table([(k // 3, "xyz"[k % 3] if k % 4 else "w", None, None) for k in range(60)],
                   int_ids=True, with_extra=False)
    _write_split(table, root, [17, 40], row_group=5)
    runner = CliRunner()
    out = tmp_path / "model"
    done = runner.invoke(app, ["mine", str(root), "--out", str(out), "--min-support", "0.2"])
    assert done.exit_code == 0, done.output
    assert "rules" in done.output and (out / "rules.parquet").exists()

    pq.write_table(pa.table({"transaction_id": [1]}), root / "part-999.parquet")
    bad_out = tmp_path / "never"
    done = runner.invoke(app, ["mine", str(root), "--out", str(bad_out)])
    assert done.exit_code != 0
    assert "part-999.parquet" in done.output and "'item'" in done.output
    assert not bad_out.exists()
