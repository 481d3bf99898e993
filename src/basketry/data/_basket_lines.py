"""The basket format: one basket per line, items separated by whitespace (FIMI ``.dat``) or by
a one-character separator (``groceries.csv``), items optionally quoted CSV style.

ASCII input without a double quote goes through one compiled pass over the bytes
(``kernels.tokenize``, no Arrow); a file holding a quote through ``_quoted`` (quoted items may
hold the separator); anything else (or ``ascii_fast_path=False``) through Arrow's string
kernels. All give the same baskets and report for a file they can all read.

Refused with a DataError naming the line: a file that is not UTF-8 text (invalid UTF-8, a
UTF-16 byte-order mark, a NUL byte), a badly quoted item, a file without any item.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from basketry.data._compiled import kernels
from basketry.data._lazy import LazyModule
from basketry.data._quoted import _split_lines
from basketry.data._result import _add_totals, _group, _sorted_vocabulary
from basketry.data._sources import _SNIFF_BYTES, _check_text, _read_bytes
from basketry.data.baskets import Baskets
from basketry.data.errors import DataError

# Arrow only for non-ASCII input (or a separator longer than one character): reading an ASCII
# file (FIMI .dat) never imports it.
pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")


def _read_basket_lines(source: Path, sep: str | None, ascii_fast_path: bool) -> Baskets:
    """``sep``: checked by ``_separators._check_sep`` (None: detect; a space: whitespace)."""
    data = _read_bytes(source)
    _check_text(source, data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data or data.isspace():  # (strip() would copy the whole file to find out)
        raise DataError(f"{source}: empty input (no basket)")
    if sep is None:
        sep = "," if b"," in data[:_SNIFF_BYTES] else " "
    whitespace = sep == " "
    label = "whitespace" if whitespace else sep
    if b'"' in data:
        values, per_line = _split_lines(source, _decode(source, data), None if whitespace else sep)
        return _from_tokens(
            source, label, pa.array(values, pa.string()), np.array(per_line, dtype=np.int64)
        )
    if ascii_fast_path and data.isascii():
        return _read_ascii_lines(source, data, sep, whitespace)

    buf = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    text = pa.LargeStringArray.from_buffers(1, offsets, buf)
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        _decode(source, data)
        raise

    lines = pc.split_pattern(text, "\n").flatten()
    if data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    lines = pc.utf8_trim_whitespace(lines)
    tokens = pc.utf8_split_whitespace(lines) if whitespace else pc.split_pattern(lines, sep)
    per_line = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    values = tokens.flatten()
    if not whitespace:
        values = pc.utf8_trim_whitespace(values)
    return _from_tokens(source, label, values, per_line)


def _decode(source: Path, data: bytes) -> str:
    """The text of the file, or a DataError naming the line of the first invalid byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{source}: line {line}: not valid UTF-8 (byte {data[e.start]:#04x})"
        ) from None


def _from_tokens(source: Path, label: str, values: pa.Array, per_line: np.ndarray) -> Baskets:
    """The baskets from the trimmed tokens of every line (an empty line: one empty token, as
    Arrow splits it) and the number of tokens per line."""
    n_lines = per_line.shape[0]
    line_of = np.repeat(np.arange(n_lines, dtype=np.int64), per_line)
    empty_token = pc.equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    # an empty line is one empty token (none with the whitespace split): not an item
    empty_line = np.zeros(n_lines, dtype=bool)
    single = per_line == 1
    starts = np.cumsum(per_line) - per_line
    empty_line[single] = empty_token[starts[single]]
    blank = empty_token & ~empty_line[line_of]
    keep = ~empty_token

    kept = values.filter(pa.array(keep))
    encoded = pc.dictionary_encode(kept)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    item_ids, vocab = _sorted_vocabulary(codes, encoded.dictionary)
    report = {
        "format": "basket",
        "separator": label,
        "rows_read": int(n_lines),
        "items_read": int(len(values) - int(empty_line.sum())),
        "dropped_blank_items": int(blank.sum()),
        "dropped_null_items": 0,
    }
    indptr, indices, _basket_line, dups = _group(line_of[keep], item_ids, n_lines, len(vocab))
    report["duplicate_items_merged"] = int(dups)
    return _basket_lines_result(source, report, indptr, indices, vocab, n_lines)


def _read_ascii_lines(source: Path, data: bytes, sep: str, whitespace: bool) -> Baskets:
    """The basket format for ASCII input: one compiled pass over the bytes (same result and
    report as the general path, several times faster and without Arrow's intermediate
    arrays)."""
    n_lines, items_read, blank, t_line, t_code, u_start, u_end = kernels.tokenize(
        np.frombuffer(data, dtype=np.uint8), -1 if whitespace else ord(sep)
    )
    words = [data[a:b].decode("ascii") for a, b in zip(u_start.tolist(), u_end.tolist(),
                                                       strict=True)]
    order = sorted(range(len(words)), key=words.__getitem__)
    vocab = np.empty(len(words), dtype=object)
    vocab[:] = [words[i] for i in order]
    rank = np.empty(len(words), dtype=np.int32)
    rank[np.array(order, dtype=np.int64)] = np.arange(len(words), dtype=np.int32)
    del words, order
    indptr, indices, dups = kernels.group_lines(t_line, rank[t_code], n_lines)
    del t_line, t_code
    report = {
        "format": "basket",
        "separator": "whitespace" if whitespace else sep,
        "rows_read": int(n_lines),
        "items_read": int(items_read),
        "dropped_blank_items": int(blank),
        "dropped_null_items": 0,
        "duplicate_items_merged": int(dups),
    }
    return _basket_lines_result(source, report, indptr, indices, vocab, n_lines)


def _basket_lines_result(
    source: object, report: dict, indptr: np.ndarray, indices: np.ndarray, vocab: np.ndarray,
    n_lines: int,
) -> Baskets:
    """The baskets of a basket-per-line file, once both parsers have grouped them."""
    n_baskets = int(indptr.shape[0] - 1)
    report["empty_baskets_dropped"] = int(n_lines - n_baskets)
    report["rows_kept"] = n_baskets
    if n_baskets == 0:
        raise DataError(
            f"{source}: no baskets left: {n_lines} lines read, none has an item "
            f"({report['dropped_blank_items']} blank items)"
        )
    _add_totals(report, indptr, vocab)
    return Baskets(indptr=indptr, indices=indices, items=vocab, source=str(source), report=report)
