"""Timestamp columns of the long formats as int64 nanoseconds (naive UTC): Arrow timestamps and
dates, or strings parsed as ISO 8601, with a ``strptime`` format (``timestamp_format``, the
CLI's ``--timestamp-format``), or in the one format guessed from the first value.

A string that does not parse, a guessed format that reads day/month both ways, and a value
outside the nanosecond range (years 1677-2262) are DataErrors naming the file, the line (CSV)
or row (Parquet), the column and the value: no timestamp is ever guessed one value at a time.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from basketry.data._arrow_codes import _encode, _lookup
from basketry.data._lazy import LazyModule
from basketry.data.errors import DataError

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")

_NAT = np.iinfo(np.int64).min  # datetime64 NaT as int64
_ADVICE = "pass --timestamp-format (timestamp_format=...), e.g. '%d/%m/%Y %H:%M'"
_NS_MIN = int(np.iinfo(np.int64).min) + 1  # the earliest ns timestamp (min is NaT)


def _check_timestamp_format(timestamp_format: str | None) -> str | None:
    """The format if ``strptime`` accepts it, else a DataError naming ``--timestamp-format``."""
    if timestamp_format is None:
        return None
    fmt = timestamp_format
    if not isinstance(fmt, str) or "%" not in fmt:
        raise DataError(
            f"--timestamp-format {fmt!r} has no % directive; give a strptime format such as "
            "'%Y-%m-%d %H:%M:%S' or '%d/%m/%Y'"
        )
    try:
        datetime.strptime("", fmt)
    except ValueError as e:
        if "directive" in str(e) or "stray %" in str(e):
            raise DataError(f"--timestamp-format {fmt!r}: {e}") from None
    return fmt


def _where(row: int, row_offset: int) -> str:
    if row_offset:
        return f"line {row + row_offset}"
    return f"row {row}"


def _timestamps(
    source: Path,
    column: pa.ChunkedArray,
    name: str,
    keep: np.ndarray,
    timestamp_format: str | None,
    row_offset: int,
) -> np.ndarray:
    """int64 nanoseconds since the epoch (UTC, naive) of the kept rows; NaT as int64 min."""
    value_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_timestamp(value_type) or pa.types.is_date(value_type):
        if pa.types.is_dictionary(column.type):
            column = column.cast(value_type)
        if pa.types.is_timestamp(value_type) and value_type.tz is not None:
            column = column.cast(pa.timestamp(value_type.unit, tz="UTC")).cast(
                pa.timestamp(value_type.unit)
            )
        if pa.types.is_date(value_type):
            column = column.cast(pa.timestamp("ms"))
        values = _as_ns(source, column, name, row_offset)
        return values if keep.all() else values[keep]
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise DataError(
            f"{source}: the timestamp column {name!r} has type {value_type}; expected "
            "timestamps, dates or strings"
        )
    codes, dictionary = _encode(column)
    codes = codes[keep]
    dictionary = pc.utf8_trim_whitespace(dictionary)
    used = np.zeros(len(dictionary) + 1, dtype=bool)
    used[codes] = True  # only the values of kept rows are parsed
    if not timestamp_format:
        dictionary = pc.if_else(pa.array(used[:-1]), dictionary, pa.scalar(None, dictionary.type))

    def first_row(bad: np.ndarray) -> tuple[str, object, int]:
        bad_row = _lookup(bad, codes, False)
        at = int(np.flatnonzero(bad_row)[0])
        row = int(np.flatnonzero(keep)[at])
        value = dictionary[int(codes[at])].as_py()
        return _where(row, row_offset), value, int(bad_row.sum())

    parsed, bad, how = _parse_timestamps(source, name, dictionary, timestamp_format, first_row)
    if (bad & used[:-1]).any():
        where, value, count = first_row(bad & used[:-1])
        raise DataError(
            f"{source}: {where}: cannot parse timestamp {value!r} in column {name!r} "
            f"({how}; {count} rows affected); {_ADVICE}"
        )
    return _lookup(parsed, codes, _NAT)


def _as_ns(source: Path, column: pa.ChunkedArray, name: str, row_offset: int) -> np.ndarray:
    """A timestamp column (naive) as int64 ns; a value outside the ns range is a DataError."""
    unit = column.type.unit
    raw = pc.fill_null(column.cast(pa.int64()), _NAT).to_numpy()
    per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    if per > 1:
        valid = raw != _NAT
        lo, hi = _NS_MIN // per + 1, np.iinfo(np.int64).max // per
        out = valid & ((raw < lo) | (raw > hi))
        if out.any():
            row = int(np.flatnonzero(out)[0])
            value = np.datetime64(int(raw[row]), unit)
            raise DataError(
                f"{source}: {_where(row, row_offset)}: timestamp {value} in column {name!r} "
                f"is outside the supported range (1677-09-22 to 2262-04-11; "
                f"{int(out.sum())} rows affected)"
            )
        raw = np.where(valid, raw * per, _NAT)
    return raw


def _parse_timestamps(
    source: Path,
    name: str,
    values: pa.Array,
    timestamp_format: str | None,
    first_row: object,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Parse distinct timestamp strings: int64 ns (NaT as int64 min), a 'bad' mask, and how
    they were read (for the message)."""
    empty = pc.equal(pc.binary_length(values), 0)
    values = pc.if_else(empty, pa.scalar(None, values.type), values)
    is_null = values.is_null().to_numpy(zero_copy_only=False)
    if timestamp_format is not None:
        ints = _strptime(values, timestamp_format)
        return ints, (ints == _NAT) & ~is_null, f"format {timestamp_format!r}"
    for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
        try:
            parsed = values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if parsed.type.tz is not None:
            parsed = parsed.cast(pa.timestamp("ns"))
        ints = pc.fill_null(parsed.cast(pa.int64()), _NAT).to_numpy(zero_copy_only=False)
        return ints, (ints == _NAT) & ~is_null, "ISO 8601"
    if is_null.all():
        return np.full(len(values), _NAT, dtype=np.int64), ~is_null, "ISO 8601"
    # not ISO 8601: one format, guessed from the first value, for every value
    from pandas.tseries.api import guess_datetime_format

    first = values[int(np.flatnonzero(~is_null)[0])].as_py()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guessed = guess_datetime_format(first)
        dayfirst = guess_datetime_format(first, dayfirst=True)
    if guessed is None:
        where, value, _count = first_row(~is_null)  # type: ignore[operator]
        raise DataError(
            f"{source}: {where}: cannot tell the format of timestamp {value!r} in column "
            f"{name!r} (not ISO 8601); {_ADVICE}"
        )
    ints = _strptime(values, guessed)
    bad = (ints == _NAT) & ~is_null
    if (
        dayfirst not in (None, guessed)
        and not guessed.startswith("%Y")
        and not bad.any()
    ):
        swapped = _strptime(values, dayfirst)
        if not ((swapped == _NAT) & ~is_null).any() and not np.array_equal(swapped, ints):
            raise DataError(
                f"{source}: the timestamps of column {name!r} (e.g. {first!r}) read as "
                f"{guessed!r} and as {dayfirst!r} alike; pass --timestamp-format "
                "(timestamp_format=...) to say which"
            )
    return ints, bad, f"format {guessed!r}, guessed from {first!r}"


def _strptime(values: pa.Array, fmt: str) -> np.ndarray:
    """int64 ns of every value parsed with ``fmt`` (NaT if null or unparsable): Arrow's
    strptime, then Python's for the values Arrow cannot read (directives it lacks, e.g. %f)."""
    parsed = pc.strptime(values, format=fmt, unit="ns", error_is_null=True)
    if pa.types.is_timestamp(parsed.type) and parsed.type.tz is not None:
        parsed = parsed.cast(pa.timestamp("ns"))
    ints = pc.fill_null(parsed.cast(pa.int64()), _NAT).to_numpy(zero_copy_only=False)
    retry = np.flatnonzero((ints == _NAT) & ~values.is_null().to_numpy(zero_copy_only=False))
    if retry.shape[0]:
        ints = ints.copy()
        for i in retry.tolist():
            ints[i] = _python_strptime(values[i].as_py(), fmt)
    return ints


def _python_strptime(value: str, fmt: str) -> int:
    try:
        t = datetime.strptime(value, fmt)
    except ValueError:
        return _NAT
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    delta = t - datetime(1970, 1, 1)
    ns = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    # (numpy would wrap a datetime outside the ns range around silently)
    return ns if _NS_MIN <= ns <= np.iinfo(np.int64).max else _NAT
