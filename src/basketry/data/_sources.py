"""Opening a transaction file (``.gz``/``.bz2``/``.xz`` decompressed on the fly, recognised by
their magic bytes whatever the file's name), checking that it is a readable regular file of
text, sniffing its first line and delimiter, and detecting its format when ``format="auto"``.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import stat
import zlib
from pathlib import Path

from basketry.data._presets import _KNOWN, PRESETS, _norm
from basketry.data.errors import DataError

_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_BASKET_SUFFIXES = {".dat", ".basket", ".baskets"}
_TEXT_SUFFIXES = {".txt"}
_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# the magic bytes of each compression: a gzip file named .csv is still read as gzip
_MAGIC = {b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\xfd7zXZ\x00": ".xz"}
_ARROW_COMPRESSION = {".gz": "gzip", ".bz2": "bz2"}
_SNIFF_BYTES = 1 << 16
_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)  # zlib: a corrupt gzip stream


def _check_source(source: Path) -> None:
    """A DataError unless ``source`` is an existing, non-empty regular file (a FIFO or device
    would block or never end; a directory is not a file)."""
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise DataError(f"{source}: no such file") from None
    except NotADirectoryError:
        raise DataError(f"{source}: no such file (a parent in the path is a file)") from None
    except PermissionError:
        raise DataError(f"{source}: permission denied") from None
    except OSError as e:
        raise DataError(f"{source}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{source}: is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(
            f"{source}: not a regular file (a pipe, socket or device); write the data to a "
            "file first"
        )
    if st.st_size == 0:
        raise DataError(f"{source}: empty file")


def _compression(source: Path) -> str | None:
    """The compression of the file (``.gz``, ``.bz2``, ``.xz``) by its magic bytes, else by its
    name (a file named .gz that is not gzip then fails with a clear line), else None."""
    try:
        with open(source, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise DataError(f"{source}: cannot read: {e.strerror or e}") from e
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    suffixes = [s.lower() for s in source.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        return suffixes[-1]
    return None


def _arrow_input(source: Path) -> object:
    """What Arrow's CSV reader should open: the path when Arrow would recognise the compression
    from the name, else a stream decompressed as the magic bytes say."""
    kind = _compression(source)
    if kind is None or (kind == source.suffix.lower() and kind in _ARROW_COMPRESSION):
        return str(source)
    import pyarrow as pa  # only the long-format readers get here: Arrow is loaded already

    if kind in _ARROW_COMPRESSION:
        return pa.input_stream(str(source), compression=_ARROW_COMPRESSION[kind])
    # xz: Arrow has no codec for it; decompressed here
    return pa.BufferReader(_read_bytes(source))


def _check_text(source: Path, data: bytes) -> None:
    """A DataError for bytes that cannot be a UTF-8 text file: UTF-16/32 (byte-order mark) or
    NUL bytes (binary data, or a UTF-16 file without a mark)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{source}: UTF-16 or UTF-32 text (byte-order mark {data[:2].hex(' ')}); save it as "
            "UTF-8"
        )
    at = data.find(b"\x00")
    if at >= 0:
        line = data.count(b"\n", 0, at) + 1
        raise DataError(
            f"{source}: line {line}: NUL byte: not a text file (binary data, or UTF-16 "
            "without a byte-order mark?)"
        )


def _suffix(source: Path) -> str:
    suffixes = [s.lower() for s in source.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_text(source: Path) -> io.BufferedIOBase:
    kind = _compression(source)
    if kind is not None:
        return _COMPRESSED[kind](source, "rb")
    return open(source, "rb")


def _read_bytes(source: Path) -> bytes:
    try:
        with _open_text(source) as f:
            return f.read()
    except _READ_ERRORS as e:
        raise DataError(f"{source}: cannot read: {e}") from e


def _head_bytes(source: Path) -> bytes:
    """The first 64 KiB (decompressed), checked to be text."""
    try:
        with _open_text(source) as f:
            head = f.read(_SNIFF_BYTES)
    except _READ_ERRORS as e:
        raise DataError(f"{source}: cannot read: {e}") from e
    _check_text(source, head)
    return head


def _head_line(source: Path) -> str:
    # the first line as Arrow's CSV parser ends it: at \n, \r\n or a lone \r
    line = _head_bytes(source).split(b"\n", 1)[0].split(b"\r", 1)[0]
    return line.decode("utf-8", errors="replace").lstrip("\ufeff")


def _is_parquet(source: Path) -> bool:
    try:
        with open(source, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError as e:
        raise DataError(f"{source}: cannot read: {e.strerror or e}") from e


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _header_names(source: Path, delimiter: str) -> list[str]:
    header = _head_line(source)
    try:
        row = next(csv.reader([header], delimiter=delimiter), [])
    except csv.Error:  # e.g. a quote in a header field: then the names are not recognised
        row = header.split(delimiter)
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
