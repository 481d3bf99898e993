"""A directory of Parquet files read as one long table, row group by row group.

The files are found recursively and read in path order (byte order of their paths relative to
the directory, so ``date=2024-01-02/part-0.parquet`` follows ``date=2024-01-01/...``). Names
starting with ``.`` or ``_`` are skipped (``_SUCCESS``, ``_metadata``, ``.crc`` files as Spark
and Hadoop write them); any other file must be Parquet. Hive-style directory names
(``key=value``) are columns of every row below them (strings), so ``--timestamp-col date``
can use a date partition.

Memory: only the columns the roles use are read, batch by batch; string columns arrive
dictionary-encoded (int32 codes per row plus one dictionary per batch), numbers and timestamps
as their 4 or 8 bytes per row. The batches then go through the same code as one Parquet file
(``_long_tables._from_table``), so the rows of a directory give the same baskets, in the same
order, with the same fingerprint as those rows read from one file; a transaction whose rows are
spread over several files is one basket.

Before any row is read every file's schema is checked against the first file's: a used column
that is missing, or of another kind (text, integer, float, timestamp...), is one DataError
naming the file and the column.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from basketry.data._column_types import _check_column_types
from basketry.data._lazy import LazyModule
from basketry.data._long_tables import _from_table
from basketry.data._presets import _resolve_columns
from basketry.data.baskets import Baskets
from basketry.data.errors import DataError

pa = LazyModule("pyarrow")
pc = LazyModule("pyarrow.compute")
pq = LazyModule("pyarrow.parquet")

_BATCH_ROWS = 1 << 20
_MAGIC = b"PAR1"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _read_parquet_directory(
    source: Path,
    flags: dict[str, str | None],
    preset: str | None,
    drop_cancelled: bool | None,
    drop_non_products: bool | None,
    timestamp_format: str | None,
    progress: Callable[[float], None] | None = None,
) -> Baskets:
    files = _parquet_files(source)
    partitions = _partitions(source, files)
    keys = list(partitions[files[0]])
    schemas, total_rows = _schemas(files)
    first = files[0]
    for key in keys:
        if key in schemas[first].names:
            raise DataError(
                f"{first}: column {key!r} is also a partition directory name ({key}=...); "
                "rename one of them"
            )
    names = list(schemas[first].names) + keys
    roles, preset_used = _resolve_columns(source, names, flags, preset)
    columns = list(dict.fromkeys(roles.values()))
    role_of = {c: r for r, c in roles.items()}
    in_file = [c for c in columns if c not in keys]
    reference = {c: _reference_type(files, schemas, c) for c in in_file}
    ref_schema = pa.schema(
        [pa.field(c, reference[c]) for c in in_file] + [pa.field(k, pa.string()) for k in keys]
    )
    _check_column_types(first, roles, ref_schema)
    for path in files:
        _check_schema(source, first, path, schemas[path], reference, role_of)

    # the type every batch is given, so that the batches form one table
    target = {c: _target_type(reference[c]) for c in in_file}
    stamp = roles.get("timestamp")
    if stamp in target and pa.types.is_timestamp(target[stamp]):
        # nanoseconds as they are read: the reader's own conversion would copy the column twice
        target[stamp] = pa.timestamp("ns", tz=target[stamp].tz)
    target.update({k: _text_type() for k in keys if k in columns})
    # fixed-width columns go straight into one numpy buffer each (8 bytes a row, no Arrow
    # chunks kept, no concatenation later); the others stay dictionary-encoded batches
    fixed = {c: _Fixed(target[c], total_rows) for c in in_file if _Fixed.fits(target[c])}
    schema = pa.schema([pa.field(c, target[c]) for c in columns if c not in fixed])
    batches = []
    done = 0
    say = progress or (lambda _fraction: None)
    say(0.0)
    starts: list[tuple[int, Path]] = []  # the first row of each file, over all files
    for path in files:
        starts.append((done, path))
        strings = [c for c in in_file if _is_text_or_bytes(schemas[path].field(c).type)]
        try:
            with pq.ParquetFile(path, read_dictionary=strings) as pf:
                for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=in_file):
                    if done + batch.num_rows > total_rows:
                        raise DataError(f"{path}: more rows than its footer says; changed "
                                        "while being read?")
                    arrays = []
                    for c in columns:
                        if c in keys:
                            arrays.append(_constant(partitions[path][c], batch.num_rows))
                        elif c in fixed:
                            fixed[c].put(done, _conform(path, c, batch.column(c), target[c]))
                        else:
                            arrays.append(_conform(path, c, batch.column(c), target[c]))
                    batches.append(pa.record_batch(arrays, schema=schema))
                    done += batch.num_rows
                    say(done / total_rows if total_rows else 1.0)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{path}: cannot read Parquet columns {in_file}: {e}") from e
    # the table is handed over (no reference kept here): the reader frees each column once it
    # has turned it into numpy codes
    try:
        baskets = _from_table(
            source, _table(batches, schema, fixed, done), roles, preset_used, drop_cancelled,
            drop_non_products, timestamp_format, "long-parquet", row_offset=0,
        )
    except DataError as e:
        raise _in_its_file(e, source, starts) from None
    # Arrow's allocator keeps freed memory for reuse; mining allocates with numpy, so give it
    # back (at 10M rows: 830 MB resident after reading, 340 MB after this)
    pa.default_memory_pool().release_unused()
    say(1.0)
    baskets.report["files_read"] = len(files)
    return baskets


def _in_its_file(error: DataError, source: Path, starts: list[tuple[int, Path]]) -> DataError:
    """A reader's error about row N of the directory as one about the row of its file."""
    found = re.match(rf"{re.escape(str(source))}: row (\d+)(.*)", str(error), re.DOTALL)
    if found is None:
        return error
    row = int(found.group(1))
    first, path = starts[bisect.bisect_right([s for s, _ in starts], row) - 1]
    return DataError(f"{path}: row {row - first}{found.group(2)}")


def _parquet_files(source: Path) -> list[Path]:
    """Every file below ``source`` in path order; a DataError for one that is not Parquet or
    for a directory with none."""
    found: list[tuple[bytes, Path]] = []
    for root, dirs, names in os.walk(source, onerror=_walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in names:
            if name.startswith((".", "_")):
                continue
            path = Path(root) / name
            found.append((os.fsencode(path.relative_to(source).as_posix()), path))
    if not found:
        raise DataError(
            f"{source}: is a directory with no file to read (names starting with '.' or '_' "
            "are skipped); expected Parquet files"
        )
    files = [p for _, p in sorted(found)]
    for path in files:
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
        if head != _MAGIC:
            raise DataError(
                f"{path}: not a Parquet file; a directory of data must hold only Parquet files "
                "(names starting with '.' or '_' are skipped)"
            )
    return files


def _walk_error(e: OSError) -> None:
    raise DataError(f"{e.filename}: cannot read the directory: {e.strerror or e}")


def _partitions(source: Path, files: list[Path]) -> dict[Path, dict[str, str | None]]:
    """The hive-style ``key=value`` directory names above each file; every file must have the
    same keys in the same order."""
    out: dict[Path, dict[str, str | None]] = {}
    for path in files:
        values: dict[str, str | None] = {}
        for part in path.relative_to(source).parts[:-1]:
            if "=" in part:
                key, value = part.split("=", 1)
                value = unquote(value)
                values[unquote(key)] = None if value == _HIVE_NULL else value
        out[path] = values
    first = list(out[files[0]])
    for path in files[1:]:
        if list(out[path]) != first:
            raise DataError(
                f"{path}: partition directories {list(out[path]) or 'none'}, but {files[0]} "
                f"has {first or 'none'}: every file must sit under the same partition keys"
            )
    return out


def _schemas(files: list[Path]) -> tuple[dict[Path, pa.Schema], int]:
    """Every file's schema and the total row count (from the footers only)."""
    schemas = {}
    total = 0
    for path in files:
        try:
            meta = pq.read_metadata(path)
            schemas[path] = meta.schema.to_arrow_schema()
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{path}: not a readable Parquet file: {e}") from e
        total += meta.num_rows
    return schemas, total


def _kind(t: pa.DataType) -> str:
    """What a column holds, whatever its width or encoding: files may differ in those."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz is None else f"timestamp (zone {t.tz})"
    if pa.types.is_date(t):
        return "date"
    return str(t)


def _is_text_or_bytes(t: pa.DataType) -> bool:
    return _kind(t) in ("text", "binary")


def _reference_type(files: list[Path], schemas: dict[Path, pa.Schema], column: str) -> pa.DataType:
    """The column's type in the first file that has it with a type other than null (a file
    whose column holds no value at all is written with the null type)."""
    first = None
    for path in files:
        if column in schemas[path].names:
            t = schemas[path].field(column).type
            first = first or t
            if not pa.types.is_null(t):
                return t
    return first if first is not None else pa.null()


def _check_schema(source: Path, first: Path, path: Path, schema: pa.Schema,
                  reference: dict[str, pa.DataType], role_of: dict[str, str]) -> None:
    for column, ref in reference.items():
        if column not in schema.names:
            raise DataError(
                f"{path}: no column {column!r} (the {role_of[column]} column, which {first} "
                f"has): every file of {source} must have the same columns"
            )
        t = schema.field(column).type
        if pa.types.is_null(t) or pa.types.is_null(ref):
            continue
        if _kind(t) != _kind(ref):
            raise DataError(
                f"{path}: column {column!r} is {t}, but other files have {ref}: every file of "
                f"{source} must give a column the same type"
            )


def _text_type() -> pa.DataType:
    return pa.dictionary(pa.int32(), pa.string())


def _target_type(ref: pa.DataType) -> pa.DataType:
    kind = _kind(ref)
    if kind == "text":
        return _text_type()
    if kind == "binary":
        return pa.dictionary(pa.int32(), pa.binary())
    if pa.types.is_dictionary(ref):
        return ref.value_type
    if kind == "integer":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    return ref


def _conform(path: Path, name: str, array: pa.Array, target: pa.DataType) -> pa.Array:
    """``array`` as ``target``: strings dictionary-encoded (one dictionary per batch, merged once
    at the end), widths and units made those of the other files."""
    if array.type == target:
        return array
    if pa.types.is_timestamp(target) and pa.types.is_timestamp(array.type):
        try:
            return array.cast(target)
        except pa.ArrowInvalid:
            raise DataError(
                f"{path}: a timestamp in column {name!r} is outside the supported range "
                "(1677-09-22 to 2262-04-11)"
            ) from None
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    if pa.types.is_dictionary(target):
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        if array.type.value_type != target.value_type:
            array = pa.DictionaryArray.from_arrays(
                array.indices, array.dictionary.cast(target.value_type)
            )
        if array.type.index_type != target.index_type:
            array = pa.DictionaryArray.from_arrays(
                array.indices.cast(target.index_type), array.dictionary
            )
        return array
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return array.cast(target)


def _table(batches: list[pa.RecordBatch], schema: pa.Schema, fixed: dict[str, _Fixed],
           n_rows: int) -> pa.Table:
    """One table of the batches and the fixed-width columns, emptying both (the table then owns
    the buffers)."""
    columns = {name: fixed.pop(name).array(n_rows) for name in list(fixed)}
    if not schema.names:
        return pa.table(columns)
    table = pa.Table.from_batches(batches, schema=schema)
    batches.clear()
    for name, column in columns.items():
        table = table.append_column(name, column)
    return table


class _Fixed:
    """A column of 8-byte values (integers, floats, timestamps) written batch by batch into one
    numpy buffer of the total row count, with a validity mask made at the first null."""

    @staticmethod
    def fits(t: pa.DataType) -> bool:
        return t in (pa.int64(), pa.float64()) or (
            pa.types.is_timestamp(t) and t.unit == "ns"
        )

    def __init__(self, t: pa.DataType, n_rows: int) -> None:
        self.type = t
        self.values = np.empty(n_rows, dtype=np.float64 if t == pa.float64() else np.int64)
        self.valid: np.ndarray | None = None

    def put(self, at: int, array: pa.Array) -> None:
        n = len(array)
        if array.null_count:
            if self.valid is None:
                self.valid = np.ones(self.values.shape[0], dtype=bool)
            self.valid[at : at + n] = array.is_valid().to_numpy(zero_copy_only=False)
            array = pc.fill_null(array, pa.scalar(0, array.type))
        self.values[at : at + n] = np.frombuffer(
            array.buffers()[1], dtype=self.values.dtype, count=n, offset=array.offset * 8
        )

    def array(self, n_rows: int) -> pa.ChunkedArray:
        values = self.values[:n_rows]
        bitmap, nulls = None, 0
        if self.valid is not None:
            valid = self.valid[:n_rows]
            nulls = int(n_rows - np.count_nonzero(valid))
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        self.values = self.valid = None  # type: ignore[assignment]
        return pa.chunked_array([pa.Array.from_buffers(
            self.type, n_rows, [bitmap, pa.py_buffer(values)], null_count=nulls
        )])


def _constant(value: str | None, n: int) -> pa.Array:
    """A partition value for ``n`` rows: 4 bytes a row, the string once."""
    indices = pa.array(np.zeros(n, dtype=np.int32)) if value is not None else pa.nulls(
        n, pa.int32()
    )
    return pa.DictionaryArray.from_arrays(indices, pa.array([value or ""], pa.string()))
