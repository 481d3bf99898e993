"""Timestamp columns of the long formats as int64 nanoseconds (naive UTC): Arrow timestamps and
dates, or strings parsed as ISO 8601, with a ``strptime`` format, or as pandas infers them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from basketry.data._arrow_codes import _encode, _lookup
from basketry.data._lazy import LazyModule
from basketry.data.errors import DataError

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")

_NAT = np.iinfo(np.int64).min  # datetime64 NaT as int64


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
        column = column.cast(pa.timestamp("ns"))
        values = pc.fill_null(column.cast(pa.int64()), _NAT).to_numpy()
        return values if keep.all() else values[keep]
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise DataError(
            f"{source}: the timestamp column {name!r} has type {value_type}; expected "
            "timestamps, dates or strings"
        )
    codes, dictionary = _encode(column)
    codes = codes[keep]
    dictionary = pc.utf8_trim_whitespace(dictionary)
    parsed, bad = _parse_timestamps(dictionary, timestamp_format)
    bad_row = _lookup(bad, codes, False)
    if bad_row.any():
        at = int(np.flatnonzero(bad_row)[0])
        row = int(np.flatnonzero(keep)[at])
        value = dictionary[int(codes[at])].as_py()
        how = f"format {timestamp_format!r}" if timestamp_format else "ISO 8601 or inferred"
        raise DataError(
            f"{source}: {_where(row, row_offset)}: cannot parse timestamp {value!r} in column "
            f"{name!r} ({how}; {int(bad_row.sum())} rows affected); pass timestamp_format=..."
        )
    return _lookup(parsed, codes, _NAT)


def _parse_timestamps(
    values: pa.Array, timestamp_format: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse distinct timestamp strings: int64 ns (NaT as int64 min) and a 'bad' mask."""
    empty = pc.equal(pc.binary_length(values), 0)
    values = pc.if_else(empty, pa.scalar(None, values.type), values)
    is_null = values.is_null().to_numpy(zero_copy_only=False)
    parsed: pa.Array | None = None
    if timestamp_format is not None:
        parsed = pc.strptime(values, format=timestamp_format, unit="ns", error_is_null=True)
    else:
        for target in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
            try:
                parsed = values.cast(target)
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        if parsed is None:
            import pandas as pd

            try:
                series = pd.to_datetime(
                    pd.Series(values.to_numpy(zero_copy_only=False), dtype=object),
                    errors="coerce",
                    utc=True,
                )
                ints = series.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(
                    np.int64
                )
            except (ValueError, TypeError, OverflowError):
                ints = np.full(len(values), _NAT, dtype=np.int64)
            return ints, (ints == _NAT) & ~is_null
    if pa.types.is_timestamp(parsed.type) and parsed.type.tz is not None:
        parsed = parsed.cast(pa.timestamp("ns"))
    ints = pc.fill_null(parsed.cast(pa.int64()), _NAT).to_numpy(zero_copy_only=False)
    return ints, (ints == _NAT) & ~is_null
