"""Read transaction files into :class:`~basketry.data.baskets.Baskets`.

Three formats:

``basket``
    One basket per line, items separated by whitespace (FIMI ``.dat`` files) or by ``sep``
    (default: a comma if the file has one in its first 64 KiB, e.g. ``groceries.csv``).
    Items are stripped of surrounding whitespace; a line with no item is an empty basket
    (dropped and counted).
``long-csv`` / ``long-parquet``
    One row per (transaction, item) with optional timestamp, customer, quantity and label
    (item description) columns. Rows are filtered in this order, each dropped row counted once
    under the first reason that applies: null transaction id, cancelled transaction
    (``drop_cancelled``: its id starts with ``"C"``), quantity <= 0 (a null quantity is kept),
    null item, blank item (empty or whitespace only after stripping). Repeated (transaction,
    item) pairs are merged and counted.

Everything is done on integer codes: string columns are dictionary-encoded as they are read
(Parquet ``read_dictionary``, CSV dictionary column types), filters and de-duplication work on
numpy integer arrays, and only the vocabulary, basket ids and customers become Python strings.

Baskets are numbered in order of first appearance in the file; item ids are assigned in
ascending order of the item string (UTF-8 byte order), so they do not depend on row order.
A basket's timestamp is the earliest timestamp of its kept rows (NaT if none); its customer is
the smallest customer id (string order) among its kept rows (baskets naming several customers
are counted in the report); an item's label is its most frequent non-blank description among
the kept rows (ties: the smallest string).

``Baskets.report`` (plain ints and strings): ``format``; ``rows_read`` (lines for the basket
format, data rows for the long formats); ``rows_kept`` (lines with at least one item; rows that
passed the filters); ``dropped_null_items``, ``dropped_blank_items``;
``duplicate_items_merged``; ``empty_baskets_dropped`` (lines without items; transactions none
of whose rows passed the filters, cancelled ones included); ``n_baskets``, ``n_items``,
``n_entries``. Basket format also: ``separator``, ``items_read``. Long formats also:
``preset``, ``columns`` (role -> column used), ``baskets_read`` (distinct transaction ids),
``dropped_null_transactions``, ``dropped_cancelled``, ``dropped_nonpositive_quantity`` (rows),
``null_timestamps`` (kept rows without a timestamp), ``baskets_with_several_customers``.

Readers never write anything.
"""

from __future__ import annotations

import bz2
import csv
import difflib
import gzip
import io
import lzma
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basketry.data._compiled import kernels
from basketry.data._lazy import LazyModule
from basketry.data.baskets import Baskets
from basketry.data.errors import DataError

# Arrow is imported when a long-format file (or a non-ASCII basket file) is read, not for the
# ASCII basket-per-line path (FIMI .dat files), which never touches it.
pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")
pacsv = LazyModule("pyarrow.csv")
pq = LazyModule("pyarrow.parquet")

__all__ = ["FORMATS", "PRESETS", "Preset", "read_baskets"]

FORMATS: tuple[str, ...] = ("auto", "basket", "long-csv", "long-parquet")

ROLES: tuple[str, ...] = ("transaction", "item", "timestamp", "customer", "quantity", "label")
_FLAG = {role: f"{role}_col" for role in ROLES}


@dataclass(frozen=True)
class Preset:
    """Column names and filters for a known source layout."""

    name: str
    columns: dict[str, str]  # role -> column name
    drop_cancelled: bool
    description: str = ""

    def matches(self, names: list[str]) -> bool:
        return set(self.columns.values()) <= set(names)


PRESETS: dict[str, Preset] = {
    "online-retail": Preset(
        name="online-retail",
        columns={
            "transaction": "InvoiceNo",
            "item": "StockCode",
            "label": "Description",
            "quantity": "Quantity",
            "timestamp": "InvoiceDate",
            "customer": "CustomerID",
        },
        drop_cancelled=True,
        description="UCI Online Retail (2010-2011)",
    ),
    "online-retail-ii": Preset(
        name="online-retail-ii",
        columns={
            "transaction": "Invoice",
            "item": "StockCode",
            "label": "Description",
            "quantity": "Quantity",
            "timestamp": "InvoiceDate",
            "customer": "Customer ID",
        },
        drop_cancelled=True,
        description="UCI Online Retail II (2009-2011)",
    ),
}

# Column names recognised when no flag names a role, in order of preference, compared after
# lower-casing and removing everything but letters and digits.
_KNOWN: dict[str, tuple[str, ...]] = {
    "transaction": (
        "transactionid", "transaction", "invoiceno", "invoice", "invoiceid", "orderid", "order",
        "basketid", "basket", "receiptid", "receipt", "ticketid", "ticket", "tid", "txid",
        "txnid",
    ),
    "item": (
        "item", "itemid", "stockcode", "sku", "productid", "product", "article", "articleid",
        "itemname", "productname",
    ),
    "timestamp": (
        "timestamp", "datetime", "invoicedate", "orderdate", "transactiondate", "date", "time",
    ),
    "customer": ("customerid", "customer", "clientid", "client", "userid", "user", "memberid"),
    "quantity": ("quantity", "qty", "units"),
    "label": (
        "description", "label", "itemdescription", "productdescription", "itemname",
        "productname", "name", "title",
    ),
}

_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_BASKET_SUFFIXES = {".dat", ".basket", ".baskets"}
_TEXT_SUFFIXES = {".txt"}
_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_SNIFF_BYTES = 1 << 16
_BATCH_ROWS = 1 << 21
_INT64_MAX = np.iinfo(np.int64).max
_NAT = np.iinfo(np.int64).min  # datetime64 NaT as int64
_ASCII_FAST_PATH = True  # basket lines in ASCII: one compiled pass (tests switch it off)


def read_baskets(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    transaction_col: str | None = None,
    item_col: str | None = None,
    timestamp_col: str | None = None,
    customer_col: str | None = None,
    quantity_col: str | None = None,
    label_col: str | None = None,
    sep: str | None = None,
    preset: str | None = None,
    drop_cancelled: bool | None = None,
    timestamp_format: str | None = None,
) -> Baskets:
    """Read a transaction file into baskets.

    Args:
        path: the file (``.gz``/``.bz2``/``.xz`` compression is recognised for text files).
        format: ``"auto"``, ``"basket"``, ``"long-csv"`` or ``"long-parquet"``. ``auto``
            picks long-parquet for ``.parquet``/``.pq`` (or the Parquet magic bytes), basket
            for ``.dat``/``.basket``/``.txt``, and for ``.csv``/``.tsv``/other text files
            long-csv when the header names the columns (given by flags, a preset, or known
            names such as ``transaction_id``/``item``), basket otherwise.
        transaction_col, item_col, timestamp_col, customer_col, quantity_col, label_col:
            column names for the long formats; when not given, a preset's names or a known
            column name is used (see ``report["columns"]``).
        sep: item separator (basket) or field delimiter (long-csv). Default: basket: a comma
            if the file contains one in its first 64 KiB, else any whitespace; long-csv: the
            most frequent of ``, ; \\t |`` in the header line.
        preset: a known layout (``"online-retail"``, ``"online-retail-ii"``); auto-detected
            when the file has all of a preset's columns. Flags override a preset's columns.
        drop_cancelled: drop transactions whose id starts with ``"C"``. Default: the preset's
            setting (True for the online-retail presets), else False.
        timestamp_format: ``strptime`` format of a string timestamp column; default: ISO 8601
            (with or without zone offset; converted to naive UTC), else the format pandas
            infers from the first value.

    Returns:
        Baskets with ``report`` counting what was read, kept and dropped.

    Raises:
        DataError: missing file, unknown format or preset, missing columns, empty input,
            unparsable timestamps, an item column with no value, or nothing left after
            filtering.
    """
    source = Path(path)
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if preset is not None and preset not in PRESETS:
        raise DataError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
    if not source.exists():
        raise DataError(f"{source}: no such file")
    if source.is_dir():
        raise DataError(f"{source}: is a directory, expected a file")
    flags = {
        "transaction": transaction_col,
        "item": item_col,
        "timestamp": timestamp_col,
        "customer": customer_col,
        "quantity": quantity_col,
        "label": label_col,
    }
    if source.stat().st_size == 0:
        raise DataError(f"{source}: empty file")

    fmt = format if format != "auto" else _detect_format(source, flags, preset, sep)
    if fmt == "basket":
        named = [_FLAG[r] for r, c in flags.items() if c is not None]
        if named or preset is not None:
            what = ", ".join(named + (["preset"] if preset is not None else []))
            raise DataError(
                f"{source}: {what} given, but the basket format (one basket per line) has no "
                "columns; use format='long-csv' for a file with one row per item"
            )
        if drop_cancelled:
            raise DataError(
                f"{source}: drop_cancelled needs transaction ids; the basket format has none"
            )
        return _read_basket_lines(source, sep)
    if fmt == "long-parquet":
        return _read_long_parquet(source, flags, preset, drop_cancelled, timestamp_format)
    return _read_long_csv(source, flags, preset, drop_cancelled, timestamp_format, sep)


# --------------------------------------------------------------------------- format detection


def _suffix(source: Path) -> str:
    suffixes = [s.lower() for s in source.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_text(source: Path) -> io.BufferedIOBase:
    suffixes = [s.lower() for s in source.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        return _COMPRESSED[suffixes[-1]](source, "rb")
    return open(source, "rb")


def _read_bytes(source: Path) -> bytes:
    try:
        with _open_text(source) as f:
            return f.read()
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise DataError(f"{source}: cannot read: {e}") from e


def _head_line(source: Path) -> str:
    try:
        with _open_text(source) as f:
            head = f.read(_SNIFF_BYTES)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise DataError(f"{source}: cannot read: {e}") from e
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode("utf-8", errors="replace").lstrip("\ufeff")


def _is_parquet(source: Path) -> bool:
    with open(source, "rb") as f:
        return f.read(4) == b"PAR1"


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _header_names(source: Path, delimiter: str) -> list[str]:
    header = _head_line(source)
    row = next(csv.reader([header], delimiter=delimiter), [])
    return [name.strip() for name in row]


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _detect_format(
    source: Path, flags: dict[str, str | None], preset: str | None, sep: str | None
) -> str:
    suffix = _suffix(source)
    if suffix in _PARQUET_SUFFIXES or _is_parquet(source):
        return "long-parquet"
    has_flags = preset is not None or any(c is not None for c in flags.values())
    if suffix in _BASKET_SUFFIXES:
        return "basket"
    if suffix in _TEXT_SUFFIXES:
        return "long-csv" if has_flags else "basket"
    # .csv, .tsv or anything else: long if the header names the columns
    if has_flags:
        return "long-csv"
    delimiter = sep or ("\t" if suffix == ".tsv" else _sniff_delimiter(_head_line(source)))
    names = _header_names(source, delimiter)
    if any(p.matches(names) for p in PRESETS.values()):
        return "long-csv"
    normed = {_norm(n) for n in names}
    if any(k in normed for k in _KNOWN["transaction"]) and any(
        k in normed for k in _KNOWN["item"]
    ):
        return "long-csv"
    return "basket"


# --------------------------------------------------------------------------- basket lines


def _read_basket_lines(source: Path, sep: str | None) -> Baskets:
    data = _read_bytes(source)
    if not data.strip():
        raise DataError(f"{source}: empty input (no basket)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if sep is None:
        sep = "," if b"," in data[:_SNIFF_BYTES] else " "
    whitespace = sep.strip() == ""
    if _ASCII_FAST_PATH and data.isascii() and (whitespace or len(sep) == 1):
        return _read_ascii_lines(source, data, sep, whitespace)

    buf = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    text = pa.LargeStringArray.from_buffers(1, offsets, buf)
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise DataError(
                f"{source}: line {line}: not valid UTF-8 (byte {data[e.start]:#04x})"
            ) from e
        raise

    lines = pc.split_pattern(text, "\n").flatten()
    if data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    lines = pc.utf8_trim_whitespace(lines)
    n_lines = len(lines)
    empty_line = pc.equal(pc.binary_length(lines), 0).to_numpy(zero_copy_only=False)

    tokens = pc.utf8_split_whitespace(lines) if whitespace else pc.split_pattern(lines, sep)
    per_line = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    values = tokens.flatten()
    if not whitespace:
        values = pc.utf8_trim_whitespace(values)
    line_of = np.repeat(np.arange(n_lines, dtype=np.int64), per_line)
    empty_token = pc.equal(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    blank = empty_token & ~empty_line[line_of]
    keep = ~empty_token

    kept = values.filter(pa.array(keep))
    encoded = pc.dictionary_encode(kept)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    item_ids, vocab = _sorted_vocabulary(codes, encoded.dictionary)
    report = {
        "format": "basket",
        "separator": "whitespace" if whitespace else sep,
        "rows_read": int(n_lines),
        "items_read": int(values.__len__() - int(empty_line.sum())),
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


# --------------------------------------------------------------------------- shared helpers


def _sorted_vocabulary(codes: np.ndarray, dictionary: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Map dictionary codes (all >= 0) to ids in string order over the codes actually used."""
    used = np.bincount(codes, minlength=len(dictionary)) > 0 if codes.size else np.zeros(
        len(dictionary), dtype=bool
    )
    used_idx = np.flatnonzero(used)
    used_dict = dictionary.take(pa.array(used_idx))
    order = pc.array_sort_indices(used_dict).to_numpy(zero_copy_only=False)
    new_id = np.full(len(dictionary), -1, dtype=np.int32)
    new_id[used_idx[order]] = np.arange(order.shape[0], dtype=np.int32)
    vocab = used_dict.take(pa.array(order)).to_numpy(zero_copy_only=False).astype(object)
    return new_id[codes], vocab


def _group(
    basket: np.ndarray, item: np.ndarray, n_baskets: int, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """CSR of unique (basket, item) pairs; empty baskets removed.

    Returns indptr, indices, the original basket number of every kept basket, and how many
    duplicate pairs were merged. Linear time (a counting sort by basket, compiled).
    """
    indptr, indices, present, dups = kernels.group_pairs(
        np.ascontiguousarray(basket, dtype=np.int32), np.ascontiguousarray(item, dtype=np.int32),
        int(n_baskets),
    )
    return indptr, indices, present, int(dups)


def _add_totals(report: dict, indptr: np.ndarray, vocab: np.ndarray) -> None:
    report["n_baskets"] = int(indptr.shape[0] - 1)
    report["n_items"] = int(vocab.shape[0])
    report["n_entries"] = int(indptr[-1])


# --------------------------------------------------------------------------- long formats


def _closest(name: str, names: list[str]) -> str | None:
    by_norm = {_norm(n): n for n in names}
    if _norm(name) in by_norm:
        return by_norm[_norm(name)]
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if match:
        return match[0]
    match = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1, cutoff=0.5)
    if match:
        return next(n for n in names if n.lower() == match[0])
    return None


def _resolve_columns(
    source: Path,
    names: list[str],
    flags: dict[str, str | None],
    preset_name: str | None,
) -> tuple[dict[str, str], Preset | None]:
    if preset_name is not None:
        preset: Preset | None = PRESETS[preset_name]
    else:
        preset = next((p for p in PRESETS.values() if p.matches(names)), None)
    shown = ", ".join(repr(n) for n in names)
    roles: dict[str, str] = {}
    missing: list[tuple[str, str, str]] = []  # (role, column, origin)
    for role in ROLES:
        col = flags[role]
        origin = _FLAG[role]
        if col is None and preset is not None and role in preset.columns:
            col = preset.columns[role]
            origin = f"{_FLAG[role]} of preset {preset.name!r}"
        if col is None:
            continue
        if col in names:
            roles[role] = col
        else:
            missing.append((role, col, origin))
    if missing:
        free = [n for n in names if n not in roles.values()]
        parts = []
        for role, col, origin in missing:
            hint = _closest(col, free)
            parts.append(
                f"{col!r} for the {role} ({origin}"
                + (f"; did you mean {hint!r}?)" if hint else ")")
            )
        raise DataError(
            f"{source}: no column {'; no column '.join(parts)}; the columns are: {shown}"
        )
    taken = set(roles.values())
    normed = {_norm(n): n for n in reversed(names)}
    for role in ROLES:
        if role in roles:
            continue
        for known in _KNOWN[role]:
            col = normed.get(known)
            if col is not None and col not in taken:
                roles[role] = col
                taken.add(col)
                break
    for role in ("transaction", "item"):
        if role not in roles:
            raise DataError(
                f"{source}: cannot tell which column holds the {role}; pass {_FLAG[role]}=... "
                f"(the columns are: {shown})"
            )
    if roles["transaction"] == roles["item"]:
        raise DataError(
            f"{source}: the same column {roles['item']!r} is named as transaction and item"
        )
    return roles, preset


def _read_long_parquet(
    source: Path,
    flags: dict[str, str | None],
    preset: str | None,
    drop_cancelled: bool | None,
    timestamp_format: str | None,
) -> Baskets:
    try:
        schema = pq.read_schema(source)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{source}: not a readable Parquet file: {e}") from e
    names = list(schema.names)
    roles, preset_used = _resolve_columns(source, names, flags, preset)
    columns = list(dict.fromkeys(roles.values()))
    strings = {
        c for c in columns
        if c != roles.get("quantity")
        and (pa.types.is_string(schema.field(c).type)
             or pa.types.is_large_string(schema.field(c).type)
             or pa.types.is_binary(schema.field(c).type))
    }
    # columns of few distinct values come straight from the file's dictionary pages
    few = [c for c in strings if c != roles["transaction"]]
    if roles["transaction"] not in strings:
        # no column of many distinct strings: one multi-threaded read
        try:
            table = pq.read_table(source, columns=columns, read_dictionary=few, use_threads=True)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{source}: cannot read Parquet columns {columns}: {e}") from e
        return _from_table(
            source, table, roles, preset_used, drop_cancelled, timestamp_format,
            "long-parquet", row_offset=0,
        )
    try:
        # batch by batch, string columns dictionary-encoded at once: memory stays near the
        # integer codes, never the whole column of strings
        batches = []
        with pq.ParquetFile(source, read_dictionary=few) as pf:
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
                batches.append(pa.record_batch(
                    [pc.dictionary_encode(batch[c])
                     if c in strings and not pa.types.is_dictionary(batch[c].type)
                     else batch[c]
                     for c in columns],
                    names=columns,
                ))
        table = pa.Table.from_batches(batches) if batches else pq.read_table(
            source, columns=columns
        )
        del batches
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{source}: cannot read Parquet columns {columns}: {e}") from e
    return _from_table(
        source, table, roles, preset_used, drop_cancelled, timestamp_format, "long-parquet",
        row_offset=0,
    )


def _read_long_csv(
    source: Path,
    flags: dict[str, str | None],
    preset: str | None,
    drop_cancelled: bool | None,
    timestamp_format: str | None,
    sep: str | None,
) -> Baskets:
    head = _head_line(source)
    if not head.strip():
        raise DataError(f"{source}: empty input (no header line)")
    delimiter = sep or ("\t" if _suffix(source) == ".tsv" else _sniff_delimiter(head))
    names = _header_names(source, delimiter)
    roles, preset_used = _resolve_columns(source, names, flags, preset)
    columns = list(dict.fromkeys(roles.values()))
    as_dict = pa.dictionary(pa.int32(), pa.string())
    types = {c: as_dict for c in columns if c != roles.get("quantity")}
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types=types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{source}: cannot parse as CSV (delimiter {delimiter!r}): {e}") from e
    return _from_table(
        source, table, roles, preset_used, drop_cancelled, timestamp_format, "long-csv",
        row_offset=2,
    )


def _where(row: int, row_offset: int) -> str:
    if row_offset:
        return f"line {row + row_offset}"
    return f"row {row}"


def _indices(array: pa.DictionaryArray) -> np.ndarray:
    idx = array.indices
    if idx.null_count == 0:
        return _numeric_view(idx).astype(np.int32, copy=False)
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _numeric_view(array: pa.Array) -> np.ndarray:
    """The values of a primitive Arrow array without nulls, as numpy (zero copy)."""
    dtype = np.dtype(array.type.to_pandas_dtype())
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )


def _plain_ints(column: pa.ChunkedArray) -> bool:
    """Signed (or up to 32-bit unsigned) integers without nulls."""
    t = column.type
    return (
        (pa.types.is_signed_integer(t) or t in (pa.uint8(), pa.uint16(), pa.uint32()))
        and column.null_count == 0
    )


def _int64(column: pa.ChunkedArray) -> np.ndarray:
    parts = [_numeric_view(c).astype(np.int64, copy=False) for c in column.chunks]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _arrow_int64(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), values.shape[0], [None, pa.py_buffer(values)])


def _same_buffers(a: pa.Array, b: pa.Array) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and x.address == y.address)
        for x, y in zip(a.buffers(), b.buffers(), strict=True)
    )


def _encode(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (int32, -1 for null) and the dictionary (as strings) of a column.

    Chunks are dictionary-encoded one by one (unless they already are); their dictionaries
    are merged with one hash pass over the concatenated chunk dictionaries (much cheaper than
    ``unify_dictionaries`` when chunks already share one dictionary or are many).
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not chunks:
        chunks = [pa.array([], column.type)]
    chunks = [c if pa.types.is_dictionary(c.type) else pc.dictionary_encode(c) for c in chunks]
    # distinct dictionaries only (Parquet gives every batch of a row group the same one, and
    # row groups written from one table usually carry equal ones)
    distinct: list[pa.Array] = []
    which = []
    for c in chunks:
        d = c.dictionary
        for k, seen in enumerate(distinct):
            if _same_buffers(d, seen) or (len(d) == len(seen) and d.equals(seen)):
                which.append(k)
                break
        else:
            which.append(len(distinct))
            distinct.append(d)
    if len(distinct) == 1:
        dictionary = distinct[0]
        codes = np.concatenate([_indices(c) for c in chunks]) if len(chunks) > 1 else _indices(
            chunks[0]
        )
    else:
        merged = pc.dictionary_encode(pa.concat_arrays(distinct))
        remap = _indices(merged)
        dictionary = merged.dictionary
        starts = np.cumsum([0] + [len(d) for d in distinct])
        locals_ = [np.append(remap[starts[k] : starts[k + 1]], np.int32(-1))
                   for k in range(len(distinct))]
        codes = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
        pos = 0
        for c, k in zip(chunks, which, strict=True):
            codes[pos : pos + len(c)] = locals_[k][_indices(c)]
            pos += len(c)
    if pa.types.is_floating(dictionary.type):
        valid = dictionary.drop_null()
        if len(valid) == 0 or (
            pc.all(pc.is_finite(valid)).as_py()
            and pc.all(pc.equal(pc.floor(valid), valid)).as_py()
        ):
            dictionary = pc.cast(dictionary, pa.int64())  # 17850.0 -> "17850"
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        dictionary = pc.cast(dictionary, pa.string())
    if dictionary.null_count:
        null_code = np.append(dictionary.is_null().to_numpy(zero_copy_only=False), True)
        codes = np.where(null_code[codes], -1, codes).astype(np.int32)
    return codes, dictionary


def _trimmed(codes: np.ndarray, dictionary: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Codes and dictionary after stripping whitespace (merging values that become equal)."""
    trimmed = pc.utf8_trim_whitespace(dictionary)
    if not pc.any(pc.not_equal(trimmed, dictionary)).as_py():
        return codes, dictionary  # nothing to strip: no second hash pass
    encoded = pc.dictionary_encode(trimmed)
    remap = np.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32), -1)
    return remap[codes], encoded.dictionary


def _lookup(table: np.ndarray, codes: np.ndarray, missing: object) -> np.ndarray:
    """``table[codes]`` with ``missing`` where a code is -1."""
    ext = np.append(table, np.array([missing], dtype=table.dtype))
    return ext[codes]


def _from_table(
    source: Path,
    table: pa.Table,
    roles: dict[str, str],
    preset: Preset | None,
    drop_cancelled: bool | None,
    timestamp_format: str | None,
    fmt: str,
    row_offset: int,
) -> Baskets:
    n = table.num_rows
    if n == 0:
        raise DataError(f"{source}: empty input (no data rows)")
    if drop_cancelled is None:
        drop_cancelled = preset.drop_cancelled if preset is not None else False
    report: dict = {
        "format": fmt,
        "preset": preset.name if preset is not None else None,
        "columns": dict(roles),
        "rows_read": int(n),
    }

    # items first: a column with no value at all is an error, whatever the filters
    item_codes, item_dict = _encode(table[roles["item"]])
    item_nulls = table[roles["item"]].null_count > 0
    if item_nulls and (item_codes < 0).all():
        raise DataError(f"{source}: the item column {roles['item']!r} is entirely null")
    item_codes, item_dict = _trimmed(item_codes, item_dict)
    blank_code = np.append(
        pc.equal(pc.binary_length(item_dict), 0).to_numpy(zero_copy_only=False), False
    )
    # per-row checks only when some item is null or blank (else nothing to drop)
    item_checks = item_nulls or bool(blank_code[:-1].any())
    if item_checks and (blank_code[item_codes] | (item_codes < 0)).all():
        raise DataError(
            f"{source}: the item column {roles['item']!r} has no non-blank value"
        )

    t_column = table[roles["transaction"]]
    if _plain_ints(t_column):
        # integer ids: codes in one compiled pass (rows grouped by transaction cost no lookup)
        t_codes, t_ids = kernels.int_codes(_int64(t_column))
        in_order = True  # codes numbered by first appearance, no null
        t_dict = pc.cast(_arrow_int64(t_ids), pa.string())
        del t_ids
    else:
        t_codes, t_dict = _encode(t_column)
        t_codes, t_dict = _trimmed(t_codes, t_dict)
        in_order = False
    del t_column
    keep = t_codes >= 0
    report["dropped_null_transactions"] = int(n - np.count_nonzero(keep))
    if in_order:  # every code is used
        report["baskets_read"] = len(t_dict)
    else:
        report["baskets_read"] = int(
            np.count_nonzero(np.bincount(t_codes[keep], minlength=len(t_dict)))
        )

    dropped = 0
    if drop_cancelled:
        cancelled_code = np.append(
            pc.starts_with(t_dict, "C").to_numpy(zero_copy_only=False), False
        )
        cancelled = cancelled_code[t_codes] & keep
        dropped = int(np.count_nonzero(cancelled))
        keep &= ~cancelled
        del cancelled
    report["dropped_cancelled"] = dropped

    dropped = 0
    if "quantity" in roles:
        quantity = _numeric(source, table[roles["quantity"]], roles["quantity"])
        nonpositive = (quantity <= 0) & keep  # NaN (null) compares False: kept
        dropped = int(np.count_nonzero(nonpositive))
        keep &= ~nonpositive
        del nonpositive, quantity
    report["dropped_nonpositive_quantity"] = dropped

    report["dropped_null_items"] = report["dropped_blank_items"] = 0
    if item_checks:
        null_item = (item_codes < 0) & keep
        report["dropped_null_items"] = int(np.count_nonzero(null_item))
        keep &= ~null_item
        del null_item
        blank = blank_code[item_codes] & keep
        report["dropped_blank_items"] = int(np.count_nonzero(blank))
        keep &= ~blank
        del blank

    n_kept = int(np.count_nonzero(keep))
    report["rows_kept"] = n_kept
    if n_kept == 0:
        removed = ", ".join(
            f"{k.removeprefix('dropped_')}: {report[k]}"
            for k in (
                "dropped_null_transactions", "dropped_cancelled", "dropped_nonpositive_quantity",
                "dropped_null_items", "dropped_blank_items",
            )
            if report[k]
        )
        raise DataError(
            f"{source}: no baskets left after filtering: {n} rows read, all removed "
            f"({removed})"
        )

    # baskets in order of first appearance among the kept rows
    all_kept = n_kept == n
    tk = t_codes if all_kept else t_codes[keep]
    del t_codes
    change = np.empty(tk.shape[0], dtype=bool)
    change[0] = True
    np.not_equal(tk[1:], tk[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    del change
    if in_order and all_kept:
        # the codes already number the transactions by first appearance, all of them kept
        n_baskets = len(t_dict)
        basket_tx = np.arange(n_baskets, dtype=np.int64)
        bk = tk
    else:
        first = np.full(len(t_dict), _INT64_MAX, dtype=np.int64)
        np.minimum.at(first, tk[starts], starts)
        present = np.flatnonzero(first < _INT64_MAX)
        basket_tx = present[np.argsort(first[present], kind="stable")]
        n_baskets = basket_tx.shape[0]
        new_basket = np.full(len(t_dict), -1, dtype=np.int32)
        new_basket[basket_tx] = np.arange(n_baskets, dtype=np.int32)
        bk = new_basket[tk]
        del first, new_basket
    del tk
    # rows grouped by basket and in first-appearance order: segments can use reduceat
    grouped = bool(np.all(bk[starts[1:]] > bk[starts[:-1]])) if starts.shape[0] > 1 else True
    seg_starts = starts if grouped and starts.shape[0] == n_baskets else None

    ik = item_codes if all_kept else item_codes[keep]
    del item_codes
    ik, vocab = _sorted_vocabulary(ik, item_dict)

    timestamps = None
    if "timestamp" in roles:
        ts = _timestamps(source, table[roles["timestamp"]], roles["timestamp"], keep,
                         timestamp_format, row_offset)
        nat = ts == _NAT
        report["null_timestamps"] = int(np.count_nonzero(nat))
        if report["null_timestamps"]:
            ts = np.where(nat, _INT64_MAX, ts)
        del nat
        per_basket = _segment_reduce(np.minimum, ts, bk, n_baskets, _INT64_MAX, seg_starts)
        per_basket[per_basket == _INT64_MAX] = _NAT
        timestamps = per_basket.view("datetime64[ns]")
        del ts

    customers = None
    if "customer" in roles:
        c_codes, c_dict = _encode(table[roles["customer"]])
        c_codes, c_dict = _trimmed(c_codes[keep], c_dict)
        c_codes[_lookup(pc.equal(pc.binary_length(c_dict), 0).to_numpy(
            zero_copy_only=False), c_codes, False)] = -1
        rank = np.empty(len(c_dict), dtype=np.int64)
        rank[pc.array_sort_indices(c_dict).to_numpy(zero_copy_only=False)] = np.arange(
            len(c_dict), dtype=np.int64
        )
        r = _lookup(rank, c_codes, _INT64_MAX)
        lo = _segment_reduce(np.minimum, r, bk, n_baskets, _INT64_MAX, seg_starts)
        r[r == _INT64_MAX] = -1
        hi = _segment_reduce(np.maximum, r, bk, n_baskets, -1, seg_starts)
        report["baskets_with_several_customers"] = int(np.count_nonzero((hi >= 0) & (hi != lo)))
        by_rank = c_dict.take(pc.array_sort_indices(c_dict)).to_numpy(zero_copy_only=False)
        customers = np.empty(n_baskets, dtype=object)
        known = lo < _INT64_MAX
        customers[known] = by_rank[lo[known]]
        del r, lo, hi, c_codes

    labels = None
    if "label" in roles:
        l_codes, l_dict = _encode(table[roles["label"]])
        l_codes, l_dict = _trimmed(l_codes[keep], l_dict)
        labels = _labels(ik, l_codes, l_dict, len(vocab))

    ids_in_order = t_dict if in_order and all_kept else t_dict.take(_arrow_int64(basket_tx))
    basket_ids = ids_in_order.to_numpy(zero_copy_only=False).astype(object, copy=False)
    del ids_in_order
    del keep
    indptr, indices, kept_baskets, dups = _group(bk, ik, n_baskets, len(vocab))
    del bk, ik
    # every basket has at least one kept row, so none is empty here
    assert kept_baskets.shape[0] == n_baskets
    report["duplicate_items_merged"] = int(dups)
    report["empty_baskets_dropped"] = int(report["baskets_read"] - n_baskets)
    _add_totals(report, indptr, vocab)
    return Baskets(
        indptr=indptr,
        indices=indices,
        items=vocab,
        labels=labels,
        timestamps=timestamps,
        basket_ids=basket_ids,
        customers=customers,
        source=str(source),
        report=report,
    )


def _segment_reduce(
    ufunc: np.ufunc,
    values: np.ndarray,
    basket: np.ndarray,
    n_baskets: int,
    initial: int,
    seg_starts: np.ndarray | None,
) -> np.ndarray:
    if seg_starts is not None:
        return ufunc.reduceat(values, seg_starts)
    out = np.full(n_baskets, initial, dtype=values.dtype)
    ufunc.at(out, basket, values)
    return out


def _numeric(source: Path, column: pa.ChunkedArray, name: str) -> np.ndarray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        try:
            column = pc.cast(column, pa.float64())
        except pa.ArrowInvalid as e:
            raise DataError(
                f"{source}: the quantity column {name!r} is not numeric ({column.type}): {e}"
            ) from e
    return column.to_numpy().astype(np.float64, copy=False)


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


def _labels(
    item_ids: np.ndarray, label_codes: np.ndarray, label_dict: pa.Array, n_items: int
) -> np.ndarray:
    """Most frequent non-blank label per item (ties: smallest string); None if none."""
    labels = np.full(n_items, None, dtype=object)
    blank = np.append(pc.equal(pc.binary_length(label_dict), 0).to_numpy(
        zero_copy_only=False), True)
    valid = ~blank[label_codes]
    if not valid.any():
        return labels
    rank = np.empty(len(label_dict), dtype=np.int64)
    order = pc.array_sort_indices(label_dict).to_numpy(zero_copy_only=False)
    rank[order] = np.arange(len(label_dict), dtype=np.int64)
    n_labels = len(label_dict)
    pair = item_ids[valid].astype(np.int64) * n_labels + rank[label_codes[valid]]
    if n_items * n_labels <= 4 * pair.shape[0] + 1_000_000:
        counts = np.bincount(pair, minlength=n_items * n_labels)
        uniq = np.flatnonzero(counts)
        counts = counts[uniq]
    else:
        uniq, counts = np.unique(pair, return_counts=True)
    item = uniq // n_labels
    lab = uniq - item * n_labels
    best = np.lexsort((lab, -counts, item))
    item, lab = item[best], lab[best]
    first = np.ones(item.shape[0], dtype=bool)
    first[1:] = item[1:] != item[:-1]
    by_rank = label_dict.take(pa.array(order)).to_numpy(zero_copy_only=False)
    labels[item[first]] = by_rank[lab[first]]
    return labels
