"""Adversarial inputs for the readers: whatever the file, ``read_baskets`` returns valid Baskets
or raises DataError (one line, naming the file), never another exception, and never writes.

Generated: arbitrary bytes under every suffix, lines of separators/quotes/blanks/odd
characters, malformed long CSV (ragged rows, odd quantities and timestamps), small Parquet
tables with random column types. Named: one case per message, asserting the file, line or
column it names."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from basketry.data import DataError, read_baskets
from basketry.data._basket_lines import _from_tokens
from basketry.data._quoted import _split_lines
from basketry.data.baskets import Baskets

# ADVERSARIAL_EXAMPLES=5000 for a longer hunt
SETTINGS = settings(
    max_examples=int(os.environ.get("ADVERSARIAL_EXAMPLES", "150")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SUFFIXES = ["x.dat", "x.csv", "x.txt", "x.tsv", "x", "x.csv.gz", "x.parquet"]
SEPS = [None, None, None, ",", " ", "\t", ";", "|", "\\t", "ab", "", "\n", '"', "\x00", "é"]


def check_valid(b: Baskets) -> None:
    """The invariants every result of read_baskets holds."""
    assert isinstance(b, Baskets)
    assert b.n_baskets > 0 and b.indptr[0] == 0
    assert np.all(np.diff(b.indptr) > 0)  # no empty basket
    assert b.indptr[-1] == b.indices.shape[0]
    items = list(b.items)
    assert all(isinstance(x, str) and x and x == x.strip() for x in items)
    assert items == sorted(set(items), key=lambda s: s.encode())
    for i in range(b.n_baskets):
        row = b.indices[b.indptr[i] : b.indptr[i + 1]]
        assert np.all(np.diff(row) > 0) and row.min() >= 0 and row.max() < len(items)


def read_or_data_error(path: Path, **kw) -> Baskets | None:
    """read_baskets, asserting it writes nothing and fails only with a one-line DataError that
    names the file (or the option at fault)."""
    before = {p: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    try:
        b = read_baskets(path, **kw)
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg.replace(repr("\n")[1:-1], ""), msg
        assert str(path) in msg or msg.startswith("--"), msg
        return None
    finally:
        after = {p: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
        assert after == before
    check_valid(b)
    return b


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


@SETTINGS
@given(data=st.binary(max_size=300), name=st.sampled_from(SUFFIXES), sep=st.sampled_from(SEPS),
       fmt=st.sampled_from(["auto", "auto", "basket", "long-csv", "long-parquet"]))
def test_arbitrary_bytes(data, name, sep, fmt):
    with tempfile.TemporaryDirectory() as d:
        read_or_data_error(write(Path(d), name, data), sep=sep, format=fmt)


PIECES = st.sampled_from([
    "a", "b", "milk", "tea bag", "12", "007", "é", "日本", ",", ";", "\t", " ", "  ", '"', '""',
    '"a,b"', "\r", "\n", "\n\n", "\ufeff", "\x00", "\x1c", "\u2028", "\\", "'", "#",
])
LINES = st.lists(PIECES, max_size=40).map("".join)


@SETTINGS
@given(text=LINES, name=st.sampled_from(["x.dat", "x.csv", "x.txt"]), sep=st.sampled_from(SEPS),
       bom=st.booleans())
def test_text_lines(text, name, sep, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    with tempfile.TemporaryDirectory() as d:
        read_or_data_error(write(Path(d), name, data), sep=sep)


HEADERS = st.lists(
    st.sampled_from(["transaction", "item", "timestamp", "quantity", "customer", "description",
                     "InvoiceNo", "x", ""]),
    min_size=1, max_size=5,
)
FIELDS = st.sampled_from([
    "1", "2", "C3", "a", "b", " ", "", "-1", "0", "two", "1e400", "nan", "inf", "2024-01-01",
    "2024-01-01T10:00:00+02:00", "01/02/2024", "13/02/2024", "yesterday", "99999-01-01",
    '"', '"a,b"', '"x\ny"', "\x00", "x" * 5000, "é",
])


@SETTINGS
@given(header=HEADERS, rows=st.lists(st.lists(FIELDS, max_size=6), max_size=12),
       sep=st.sampled_from([None, ",", ";"]), ts_format=st.sampled_from([None, "%d/%m/%Y"]))
def test_long_csv(header, rows, sep, ts_format):
    d = sep or ","
    text = d.join(header) + "\n" + "".join(d.join(r) + "\n" for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "x.csv", text.encode())
        read_or_data_error(path, sep=sep, format="long-csv", timestamp_format=ts_format)
        read_or_data_error(path, sep=sep)


def _arrow_columns(n: int) -> st.SearchStrategy:
    """(type, values) of a random column of n rows: usable types and unusable ones."""
    text = st.one_of(st.none(), st.sampled_from(["a", "b", " ", "", "C1", "é"]))
    cases = [
        (pa.string(), text), (pa.large_string(), text),
        (pa.binary(), st.one_of(st.none(), st.sampled_from([b"a", b"\xff", b""]))),
        (pa.int64(), st.one_of(st.none(), st.integers(-3, 3))),
        (pa.uint64(), st.integers(0, 2**64 - 1)),
        (pa.float64(), st.one_of(st.none(), st.floats(allow_nan=True))),
        (pa.bool_(), st.booleans()),
        (pa.decimal128(5, 1), st.none()),
        (pa.date32(), st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))),
        (pa.timestamp("s"), st.datetimes(dt.datetime(1, 1, 1))),
        (pa.timestamp("ms", tz="UTC"), st.none()),
        (pa.null(), st.none()),
        (pa.list_(pa.string()), st.lists(text, max_size=2)),
        (pa.struct([("x", pa.int64())]), st.fixed_dictionaries({"x": st.integers(0, 3)})),
        (pa.map_(pa.string(), pa.int64()), st.just([("k", 1)])),
        (pa.duration("s"), st.integers(0, 10)),
        (pa.time32("s"), st.integers(0, 10)),
        (pa.dictionary(pa.int32(), pa.string()), text),
    ]
    return st.sampled_from(cases).flatmap(
        lambda tv: st.lists(tv[1], min_size=n, max_size=n).map(lambda vs: (tv[0], vs))
    )


@SETTINGS
@given(data=st.data(), n=st.integers(0, 6),
       extra=st.lists(st.sampled_from(["timestamp", "quantity", "customer", "description",
                                       "other", "item"]),
                      unique=True, max_size=5))
def test_parquet_random_types(data, n, extra):
    names = ["transaction", *extra] if "item" in extra else ["transaction", "item", *extra]
    arrays = []
    for _ in names:
        t, values = data.draw(_arrow_columns(n))
        if pa.types.is_dictionary(t):
            arrays.append(pa.array(values, pa.string()).dictionary_encode())
        elif pa.types.is_decimal(t):
            arrays.append(pa.array([None] * n, t))
        else:
            arrays.append(pa.array(values, t))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.parquet"
        pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
        read_or_data_error(path)


# --- quoting of basket lines -------------------------------------------------------------

ITEM = st.text(st.sampled_from('ab ,;"\té'), min_size=1, max_size=6).map(str.strip).filter(bool)


@SETTINGS
@given(baskets=st.lists(st.lists(ITEM, min_size=1, max_size=5), min_size=1, max_size=20),
       sep=st.sampled_from([",", ";", "\t"]))
def test_csv_quoted_basket_lines_read_back(baskets, sep):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.txt"
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter=sep, lineterminator="\n").writerows(baskets)
        b = read_baskets(path, sep=sep)
    got = [frozenset(b.basket(i)) for i in range(b.n_baskets)]
    assert got == [frozenset(x) for x in baskets]


@SETTINGS
@given(text=st.lists(st.sampled_from(["a", "bc", "1", "  ", "\t", ",", "\n", "é", "x y"]),
                     max_size=30).map("".join).filter(lambda t: t.strip()),
       sep=st.sampled_from([",", " ", ";"]))
def test_quote_aware_split_matches_the_other_paths(text, sep):
    """Without a quote, the quote-aware splitter reads a file as the compiled/Arrow paths do."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "x.txt", text.encode())
        try:
            expected = read_baskets(path, sep=sep)
        except DataError as e:
            expected = e
        values, per_line = _split_lines(path, text, None if sep == " " else sep)
        try:
            got = _from_tokens(path, "whitespace" if sep == " " else sep,
                               pa.array(values, pa.string()), np.array(per_line, dtype=np.int64))
        except DataError as e:
            assert isinstance(expected, DataError) and str(e) == str(expected)
            return
    assert not isinstance(expected, DataError), expected
    assert got.report == expected.report
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    assert list(got.items) == list(expected.items)


@pytest.mark.parametrize(("line", "sep", "items"), [
    ('"bread, white",milk', ",", {"bread, white", "milk"}),
    ('milk, "bread, white" ', ",", {"bread, white", "milk"}),
    ('"a ""b"" c",d', ",", {'a "b" c', "d"}),
    ('"tea bag" milk', " ", {"tea bag", "milk"}),
    ('"x;y";z', ";", {"x;y", "z"}),
    ('"",a', ",", {"a"}),
])
def test_quoted_items(tmp_path, line, sep, items):
    path = tmp_path / "x.txt"
    path.write_text(line + "\nz\n")
    b = read_baskets(path, sep=sep)
    assert set(b.basket(0)) == items


# --- timestamp formats -------------------------------------------------------------------

FORMATS = ["%d/%m/%Y %H:%M", "%m-%d-%Y", "%Y%m%d %H%M%S", "%d %b %Y", "%Y-%m-%d %H:%M:%S.%f"]


@SETTINGS
@given(moments=st.lists(st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)),
                        min_size=1, max_size=10),
       fmt=st.sampled_from(FORMATS))
def test_timestamp_format_applies_to_every_row(moments, fmt):
    rows = "".join(f"{i},a,{m.strftime(fmt)}\n" for i, m in enumerate(moments))
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "x.csv", ("transaction,item,timestamp\n" + rows).encode())
        b = read_baskets(path, timestamp_format=fmt)
    expected = [np.datetime64(dt.datetime.strptime(m.strftime(fmt), fmt), "ns") for m in moments]
    assert list(b.timestamps) == expected


# --- named cases: each message names the file, line or column -----------------------------

def _parquet(path: Path, **columns) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _text(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


CASES = {
    # name: (file name, make(path) -> path, read_baskets kwargs, substrings of the message)
    "nested list item": ("x.parquet", lambda p: _parquet(
        p, transaction=["1", "2"], item=[["a"], ["b"]]), {},
        ["x.parquet", "item column 'item'", "list<element: string>"]),
    "struct transaction": ("x.parquet", lambda p: _parquet(
        p, transaction=[{"x": 1}], item=["a"]), {},
        ["x.parquet", "transaction column 'transaction'", "struct<x: int64>"]),
    "map customer": ("x.parquet", lambda p: _parquet(
        p, transaction=["1"], item=["a"],
        customer=pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))), {},
        ["customer column 'customer'", "map<string, int64"]),
    "list quantity": ("x.parquet", lambda p: _parquet(
        p, transaction=["1"], item=["a"], quantity=[[1]]), {},
        ["quantity column 'quantity'", "expected numbers"]),
    "list label": ("x.parquet", lambda p: _parquet(
        p, transaction=["1"], item=["a"], description=[["x"]]), {},
        ["label column 'description'", "list<element: string>"]),
    "struct timestamp": ("x.parquet", lambda p: _parquet(
        p, transaction=["1"], item=["a"], timestamp=[{"x": 1}]), {},
        ["timestamp column 'timestamp'", "struct<x: int64>"]),
    "binary item not utf-8": ("x.parquet", lambda p: _parquet(
        p, transaction=["1", "2"], item=pa.array([b"a", b"\xff"])), {},
        ["x.parquet", "row 1", "item column 'item'", "not valid UTF-8"]),
    "timestamp out of range": ("x.parquet", lambda p: _parquet(
        p, transaction=["1", "2"], item=["a", "b"],
        timestamp=pa.array([0, 2**40], pa.timestamp("s"))), {},
        ["x.parquet", "row 1", "column 'timestamp'", "outside the supported range"]),
    "duplicate column": ("x.csv", lambda p: _text(p, "transaction,item,item\n1,a,b\n"), {},
        ["x.csv", "item column 'item' appears 2 times"]),
    "sep of two characters": ("x.csv", lambda p: _text(p, "a,b\n"), {"sep": "ab"},
        ["--sep 'ab'", "2 characters"]),
    "empty sep": ("x.csv", lambda p: _text(p, "a,b\n"), {"sep": ""}, ["--sep ''", "empty"]),
    "newline sep": ("x.csv", lambda p: _text(p, "a,b\n"), {"sep": "\n"},
        ["--sep '\\n'", "line break"]),
    "quote sep": ("x.csv", lambda p: _text(p, "a,b\n"), {"sep": '"'}, ["quote character"]),
    "non-ASCII sep for long CSV": ("x.csv", lambda p: _text(p, "transaction,item\n1,a\n"),
        {"sep": "é", "format": "long-csv"}, ["--sep 'é'", "ASCII"]),
    "unclosed quote in basket line": ("x.csv", lambda p: _text(p, 'a,b\nc,"d,e\n'), {},
        ["x.csv", "line 2", "item 2", "not closed"]),
    "text after closing quote": ("x.csv", lambda p: _text(p, '"a"b,c\n'), {},
        ["x.csv", "line 1", "item 1", "after the closing quote"]),
    "quote inside unquoted item": ("x.csv", lambda p: _text(p, 'a\nbread "white, sliced"\n'),
        {}, ["x.csv", "line 2", "item 1", "holds a quote"]),
    "unclosed quote in long CSV": ("x.csv", lambda p: _text(
        p, 'transaction,item\n1,a\n2,"b\n3,c\n'), {},
        ["x.csv", "data row 2", "column 'item'", "line break"]),
    "unclosed quote in a description at the end": ("x.csv", lambda p: _text(
        p, 'transaction,item,description\n1,a,x\n2,b,"y\n3,c,z\n'), {},
        ["x.csv", "data row 2", "column 'description'", "line break"]),
    "ragged long CSV": ("x.csv", lambda p: _text(p, "transaction,item\n1,a\n2\n"), {},
        ["x.csv", "line 3", "1 fields, expected 2"]),
    "header without newline": ("x.csv", lambda p: _text(p, "transaction,item"), {},
        ["x.csv", "no data rows"]),
    "long CSV not UTF-8": ("x.csv", lambda p: _text(p, b"transaction,item\n1,a\n2,caf\xe9\n"),
        {}, ["x.csv", "line 3", "not valid UTF-8"]),
    "NUL byte": ("x.dat", lambda p: _text(p, b"a b\nc\x00d\n"), {},
        ["x.dat", "line 2", "NUL byte"]),
    "UTF-16": ("x.csv", lambda p: _text(p, "transaction,item\n1,a\n".encode("utf-16")), {},
        ["x.csv", "UTF-16", "UTF-8"]),
    "only a BOM": ("x.csv", lambda p: _text(p, b"\xef\xbb\xbf"), {}, ["x.csv", "empty input"]),
    "gzip with a plain name": ("x.dat", lambda p: _text(p, gzip.compress(b"a b\nc\n")), {}, None),
    "not gzip but named .gz": ("x.csv.gz", lambda p: _text(p, b"a,b\n"), {},
        ["x.csv.gz", "cannot read"]),
    "0-byte parquet": ("x.parquet", lambda p: _text(p, b""), {}, ["x.parquet", "empty file"]),
    "mixed timestamp formats": ("x.csv", lambda p: _text(
        p, "transaction,item,timestamp\n1,a,2024-01-01\n2,b,01/02/2024\n"), {},
        ["x.csv", "line 3", "'01/02/2024'", "column 'timestamp'", "--timestamp-format"]),
    "timestamp not matching the format": ("x.csv", lambda p: _text(
        p, "transaction,item,timestamp\n1,a,01/02/2024\n2,b,2024-01-01\n"),
        {"timestamp_format": "%d/%m/%Y"},
        ["x.csv", "line 3", "'2024-01-01'", "'%d/%m/%Y'", "--timestamp-format"]),
    "ambiguous day and month": ("x.csv", lambda p: _text(
        p, "transaction,item,timestamp\n1,a,01/02/2024\n2,b,03/04/2024\n"), {},
        ["x.csv", "column 'timestamp'", "'%m/%d/%Y'", "'%d/%m/%Y'", "--timestamp-format"]),
    "unguessable timestamp": ("x.csv", lambda p: _text(
        p, "transaction,item,timestamp\n1,a,soon\n"), {},
        ["x.csv", "line 2", "'soon'", "--timestamp-format"]),
    "bad timestamp format": ("x.csv", lambda p: _text(p, "transaction,item\n1,a\n"),
        {"timestamp_format": "%Q"}, ["--timestamp-format '%Q'", "bad directive"]),
    "timestamp format without directive": ("x.csv", lambda p: _text(p, "transaction,item\n"),
        {"timestamp_format": "YYYY"}, ["--timestamp-format 'YYYY'", "no % directive"]),
    "timestamp format for basket lines": ("x.dat", lambda p: _text(p, "a b\n"),
        {"timestamp_format": "%Y"}, ["x.dat", "--timestamp-format", "no timestamps"]),
    "non-numeric quantity": ("x.csv", lambda p: _text(
        p, "transaction,item,quantity\n1,a,2\n2,b, \n3,c,two\n"), {},
        ["x.csv", "line 4", "'two'", "quantity column 'quantity'", "not numeric"]),
    "timestamp format without timestamp column": ("x.csv", lambda p: _text(
        p, "transaction,item\n1,a\n"), {"timestamp_format": "%Y"},
        ["x.csv", "--timestamp-format", "no timestamp column"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_named_case(tmp_path, case):
    name, make, kwargs, expected = CASES[case]
    path = make(tmp_path / name)
    if expected is None:  # read correctly
        assert read_or_data_error(path, **kwargs) is not None
        return
    with pytest.raises(DataError) as e:
        read_baskets(path, **kwargs)
    msg = str(e.value)
    for part in expected:
        assert part in msg, (part, msg)
    assert "\n" not in msg


# --- what is not a readable file -------------------------------------------------------------

def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"x\.csv: not a regular file"):
        read_baskets(fifo)


def test_path_under_a_regular_file(tmp_path):
    (tmp_path / "f.csv").write_text("a\n")
    with pytest.raises(DataError, match=r"f\.csv/x\.csv: no such file \(a parent in the path"):
        read_baskets(tmp_path / "f.csv" / "x.csv")


def test_dangling_symlink(tmp_path):
    link = tmp_path / "x.csv"
    link.symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DataError, match=r"x\.csv: no such file"):
        read_baskets(link)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n")
    p.chmod(0)
    with pytest.raises(DataError, match=r"x\.csv: permission denied"):
        read_baskets(p)


def test_gzip_named_csv_is_read_as_long_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(gzip.compress(b"transaction,item\n1,a\n1,b\n2,a\n"))
    b = read_baskets(p)
    assert b.report["format"] == "long-csv" and b.n_baskets == 2


def test_nan_ids_are_null_not_the_string_nan(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({
        "transaction": pa.array([1.0, 1.0, 2.0, float("nan")]),
        "item": pa.array([1.0, float("nan"), 2.0, 3.0]),
        "customer": pa.array([float("nan"), 7.0, 8.0, 9.0]),
    }), p)
    b = read_baskets(p)
    assert list(b.items) == ["1", "2"] and list(b.basket_ids) == ["1", "2"]
    assert list(b.customers) == [None, "8"]  # basket 1 keeps only its row without customer
    assert b.report["dropped_null_transactions"] == 1 and b.report["dropped_null_items"] == 1


def test_corrupt_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(b"".join(b"%d item%d\n" % (i, i % 50) for i in range(20000))))
    data[len(data) // 2] ^= 0xFF
    p = tmp_path / "x.dat.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"x\.dat\.gz: cannot read"):
        read_baskets(p)


def test_tsv_basket_lines_split_on_tabs_only(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("tea bag\tmilk\nbread\n")
    b = read_baskets(p)
    assert b.report["separator"] == "\t" and set(b.basket(0)) == {"tea bag", "milk"}
    assert set(read_baskets(p, sep="\\t").basket(0)) == {"tea bag", "milk"}


def test_a_quoted_line_break_in_a_description_is_read(tmp_path):
    """RFC 4180: a quoted value may hold a line break; a description (label) is such a value."""
    path = _text(tmp_path / "x.csv",
                 'transaction,item,description\n1,a,"two\nlines"\n1,b,x\n2,a,"two\nlines"\n')
    baskets = read_baskets(path)
    assert baskets.n_baskets == 2
    assert "two\nlines" in list(baskets.labels)
