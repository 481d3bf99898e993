"""One line naming the line of a long CSV file that Arrow's parser refused.

Arrow's messages name neither the file nor the line ("Expected 2 columns, got 1: ..."); on that
error path only, the file is scanned again with Python's ``csv`` module to find the first line
that is not valid UTF-8 or whose number of fields differs from the header's.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from basketry.data._sources import _read_bytes
from basketry.data.errors import DataError


def _csv_error(source: Path, delimiter: str, error: Exception) -> DataError:
    """The DataError for a CSV file Arrow could not parse (``error``: Arrow's exception)."""
    fallback = DataError(
        f"{source}: cannot parse as CSV (delimiter {delimiter!r}): "
        f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
    )
    try:
        data = _read_bytes(source)
    except DataError as e:
        return e
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return DataError(f"{source}: line {line}: not valid UTF-8 (byte {data[e.start]:#04x})")
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(sys.maxsize)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return DataError(f"{source}: empty input (no header line)")
        width = len(header)
        rows = 0
        for row in reader:
            if not row:
                continue  # a blank line (Arrow skips it too)
            rows += 1
            if len(row) != width:
                return DataError(
                    f"{source}: line {reader.line_num}: cannot parse as CSV: {len(row)} fields, "
                    f"expected {width} as in the header (delimiter {delimiter!r})"
                )
        if rows == 0:
            return DataError(f"{source}: empty input (no data rows)")
    except csv.Error as e:
        return DataError(f"{source}: line {reader.line_num + 1}: cannot parse as CSV: {e}")
    finally:
        csv.field_size_limit(limit)
    return fallback
