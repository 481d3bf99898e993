"""Which Arrow types each column role of a long table accepts, checked on the schema before the
columns are read: a nested list, struct, map or union (or a dictionary of one) is one clear
DataError naming the file, the column, its role and its type, never an Arrow traceback later.

- transaction, item, customer, label: one scalar per row, read as text: strings, binary
  (UTF-8), integers, floats, decimals, booleans, dates and timestamps;
- quantity: numbers (integers, floats, decimals, booleans) or strings of numbers;
- timestamp: timestamps, dates, or strings (parsed later);
- a column of the null type (no value at all) is accepted for every role: the filters then
  say what is left.
"""

from __future__ import annotations

from pathlib import Path

from basketry.data._lazy import LazyModule
from basketry.data.errors import DataError

pa = LazyModule("pyarrow")

_EXPECTED = {
    "transaction": "strings or integers (one id per row)",
    "item": "strings or integers (one item per row: a list of items needs one row per item)",
    "customer": "strings or integers (one id per row)",
    "label": "strings (one description per row)",
    "quantity": "numbers",
    "timestamp": "timestamps, dates or strings",
}


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_bytes(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
    )


def _is_number(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        or pa.types.is_boolean(t)
    )


def _accepts(role: str, t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return True
    if role == "timestamp":
        return pa.types.is_timestamp(t) or pa.types.is_date(t) or _is_text(t)
    if role == "quantity":
        return _is_number(t) or _is_text(t)
    return (
        _is_text(t) or _is_bytes(t) or _is_number(t) or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
    )


def _check_column_types(source: Path, roles: dict[str, str], schema: pa.Schema) -> None:
    """A DataError for the first role whose column is of a type that role cannot use."""
    for role, column in roles.items():
        t = schema.field(column).type
        if not _accepts(role, t):
            raise DataError(
                f"{source}: the {role} column {column!r} has type {t}; expected "
                f"{_EXPECTED[role]}"
            )
