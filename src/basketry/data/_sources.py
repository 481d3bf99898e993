"""Opening a transaction file (``.gz``/``.bz2``/``.xz`` decompressed on the fly), sniffing its
first line and delimiter, and detecting its format when ``format="auto"``.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
from pathlib import Path

from basketry.data._presets import _KNOWN, PRESETS, _norm
from basketry.data.errors import DataError

_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_BASKET_SUFFIXES = {".dat", ".basket", ".baskets"}
_TEXT_SUFFIXES = {".txt"}
_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_SNIFF_BYTES = 1 << 16


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
