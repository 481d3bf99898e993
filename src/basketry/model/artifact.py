"""Writing and reading model artifacts: a directory of Parquet tables and a JSON manifest.

Writing is atomic (a temporary sibling directory renamed into place), so a failed write never
leaves a half-written model. Reading verifies the format version and every file's SHA-256 before
any table is parsed. No pickle is involved anywhere.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from basketry.model._version import VERSION_OF, content_version, to_json_value
from basketry.model.columns import primitive_array, string_array
from basketry.model.errors import (
    ModelContentError,
    ModelError,
    ModelFormatError,
    ModelIntegrityError,
)
from basketry.model.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    MANIFEST_FILE,
    REPEAT_FILE,
    REPEAT_SCHEMA,
    RULES_FILE,
    RULES_SCHEMA,
    SEQUENTIAL_RULES_FILE,
    SEQUENTIAL_RULES_SCHEMA,
)
from basketry.model.sequential import SequentialPart, check_sequential, part_from_manifest
from basketry.model.validate import (
    check_counts_match,
    check_items,
    check_manifest,
    check_no_nulls,
    check_rules,
    check_scoring,
)

_CHUNK = 1 << 20
#: The manifest fields the writer sets (``extra`` may not replace them).
_MANIFEST_FIELDS = frozenset({"format", "format_version", "model_version", "basketry_version",
                              "created_at", "parameters", "scoring", "counts", "dataset",
                              "metrics", "files", "version_of"})


@dataclass(frozen=True)
class Artifact:
    """The verified content of a model directory, before any index is built."""

    path: Path
    manifest: dict[str, Any]
    items: pa.Table
    rules: pa.Table
    #: the optional sequential part (after the purchase), None for a model without it
    sequential: SequentialPart | None = None

    @property
    def version(self) -> str:
        return str(self.manifest["model_version"])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _basketry_version() -> str:
    # the model package may not import the rest of basketry, but the version is package metadata
    try:
        from importlib.metadata import version

        return version("basketry")
    except Exception:  # running from a source tree that was never installed
        return "unknown"


def _write_table(table: pa.Table, path: Path) -> dict[str, Any]:
    # fixed writer options and no pandas metadata, so the same table gives the same bytes
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=False)
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size, "rows": table.num_rows}


def _conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` as ``schema`` (columns selected and cast), or ``ModelError`` naming ``where``
    (a file, or a table being written) and the column."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ModelError(f"{where} lacks column(s) {missing}; it has {table.column_names}")
    table = table.select(schema.names)
    # a null where the format has none: named with its row (the cast would only say "null")
    check_no_nulls(table, tuple(f.name for f in schema if not f.nullable), where)
    if table.schema.types == schema.types:
        # what the cast gives, without it: a cast imports pyarrow.compute (0.04 s)
        return pa.Table.from_arrays(table.columns, schema=schema)
    try:
        return table.cast(schema)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        raise ModelError(f"{where} does not fit the model format: {detail}") from None


def is_model_directory(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is recognisably a basketry model directory: its manifest.json is a JSON
    object whose ``format`` is ``basketry-model`` (whatever else is wrong with the model)."""
    manifest_path = Path(path) / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_NAME


def check_model_target(path: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse (``ModelError``, nothing touched) to write a model at ``path`` unless it is new,
    an empty directory, or, with ``overwrite``, a model directory holding nothing but its
    manifest and the files the manifest lists: replacing anything else would lose data."""
    target = Path(path)
    if target.is_symlink():
        raise ModelError(f"{target} is a symbolic link; write the model to a real path")
    if not target.exists():
        return
    if not target.is_dir():
        raise ModelError(f"{target} exists and is not a directory; a model is a directory: "
                         "choose another path")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    if not overwrite:
        raise ModelError(f"{target} already exists; choose another path or allow overwrite")
    if not is_model_directory(target):
        raise ModelError(f"{target} is not a basketry model directory; overwrite replaces only "
                         "a model, never other files: choose another path")
    files = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8")).get("files")
    known = {MANIFEST_FILE, *(files if isinstance(files, dict) else ())}
    others = [name for name in entries if name not in known]
    if others:
        raise ModelError(f"{target} holds {others[0]!r}, which is not part of its model; "
                         "overwrite replaces only a model, never other files: move it first")


def validate_content(
    items: pa.Table, rules: pa.Table, *, n_baskets: Any, scoring: Any = None,
    where: str = "",
) -> None:
    """Check a model's content before it is written (``ModelContentError`` naming the table,
    column and an example row): what ``read_artifact`` checks of the tables, the count of
    baskets and the scoring object. ``where``: a prefix for the messages (e.g. a source
    file). ``items`` and ``rules`` follow ``ITEMS_SCHEMA`` and ``RULES_SCHEMA``."""
    prefix = f"{where}: " if where else ""
    if isinstance(n_baskets, bool) or not isinstance(n_baskets, int | np.integer) \
            or n_baskets < 1:
        raise ModelContentError(f"{prefix}n_baskets must be a whole number >= 1, "
                                f"got {n_baskets!r}")
    check_scoring(scoring, f"{prefix}manifest")
    check_items(items, int(n_baskets), f"{prefix}items table")
    check_rules(rules, items.num_rows, int(n_baskets), f"{prefix}rules table")


def items_table(
    items: Sequence[str] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    labels: Sequence[str | None] | np.ndarray | None = None,
) -> pa.Table:
    """The items table from parallel arrays indexed by item id."""
    return pa.Table.from_arrays(
        [
            string_array([str(x) for x in items]),
            pa.nulls(len(items), pa.string()) if labels is None else string_array(
                [None if x is None or x != x else str(x) for x in labels]),
            primitive_array(np.asarray(counts, dtype=np.int64), pa.int64()),
        ],
        schema=ITEMS_SCHEMA,
    )


def write_model(
    path: str | os.PathLike[str],
    *,
    items: pa.Table,
    rules: pa.Table,
    n_baskets: int,
    parameters: dict[str, Any],
    dataset: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    scoring: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    sequential: SequentialPart | None = None,
) -> Path:
    """Write a model directory at ``path`` atomically and return its path.

    ``items`` follows ``ITEMS_SCHEMA`` (row number = item id) and ``rules`` follows
    ``RULES_SCHEMA`` (antecedent and consequent are lists of item ids). The model version is
    derived from the content (data files, parameters, scoring, dataset fingerprint), so the same
    data and parameters always give the same version. The content is checked first as loading
    checks it (``validate_content``) and the target as ``check_model_target`` does: a model
    that would not load is never written, and nothing but a model is ever replaced.
    """
    target = Path(path)
    check_model_target(target, overwrite=overwrite)
    items = _conform(items, ITEMS_SCHEMA, "items table")
    rules = _conform(rules, RULES_SCHEMA, "rules table")
    validate_content(items, rules, n_baskets=n_baskets, scoring=scoring)
    n_items = items.num_rows
    if sequential is not None:
        sequential = _sequential_part(sequential, n_items)
        parameters = {**parameters, "sequential": sequential.parameters}
    reserved = sorted(set(extra or ()) & _MANIFEST_FIELDS)
    if reserved:
        raise ModelError(f"extra manifest fields {reserved} would replace the writer's own")
    # the manifest's values as they read back, so a reader derives the same model version
    parameters, scoring, dataset, metrics, extra = (
        to_json_value(x) for x in (parameters, scoring or {}, dataset or {}, metrics or {},
                                   extra or {}))

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), suffix=".tmp",
                                    dir=target.parent))
    try:
        files = {
            ITEMS_FILE: _write_table(items, staging / ITEMS_FILE),
            RULES_FILE: _write_table(rules, staging / RULES_FILE),
        }
        if sequential is not None:
            files[SEQUENTIAL_RULES_FILE] = _write_table(sequential.rules,
                                                        staging / SEQUENTIAL_RULES_FILE)
            files[REPEAT_FILE] = _write_table(sequential.repeat, staging / REPEAT_FILE)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "version_of": list(VERSION_OF),
            "basketry_version": _basketry_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": parameters,
            "scoring": scoring,
            "counts": {
                "n_baskets": int(n_baskets),
                "n_items": n_items,
                "n_rules": rules.num_rows,
                **({} if sequential is None else {"sequential": sequential.counts()}),
            },
            "dataset": dataset,
            "metrics": metrics,
            "files": files,
            **extra,
        }
        manifest["model_version"] = content_version(manifest, VERSION_OF)
        with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True)
            fh.write("\n")
        if target.exists():
            if _exchange(staging, target):
                # one atomic step: the target is the old model or the new one, never neither;
                # the old one is now in the staging directory
                shutil.rmtree(staging, ignore_errors=True)
            else:
                # no atomic exchange here: old model aside under a fresh name, new one in, old
                # one removed; a kill between the two renames leaves the old model aside,
                # removed by the next write to this target
                aside = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), suffix=".old",
                                              dir=target.parent))
                os.replace(target, aside)
                os.replace(staging, target)
                shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _sequential_part(part: SequentialPart, n_items: int) -> SequentialPart:
    """``part`` with its tables in the format's schemas, checked as loading checks it."""
    part = SequentialPart(
        rules=_conform(part.rules, SEQUENTIAL_RULES_SCHEMA, "sequential rules table"),
        repeat=_conform(part.repeat, REPEAT_SCHEMA, "repeat items table"),
        n_customers=int(part.n_customers), parameters=to_json_value(part.parameters))
    check_sequential(part, n_items, "sequential part")
    return part


def _read_sequential(root: Path, manifest: dict[str, Any], n_items: int
                     ) -> SequentialPart | None:
    """The sequential part when the manifest lists it (both files or neither), checked."""
    listed = [name for name in (SEQUENTIAL_RULES_FILE, REPEAT_FILE) if name in manifest["files"]]
    if not listed:
        return None
    where = str(root / MANIFEST_FILE)
    if len(listed) == 1:
        raise ModelFormatError(f"{where} lists {listed[0]} without its companion file "
                               "(the sequential part is both files)")
    try:
        rules = pq.ParquetFile(root / SEQUENTIAL_RULES_FILE).read()
        repeat = pq.ParquetFile(root / REPEAT_FILE).read()
    except (OSError, pa.ArrowException) as exc:
        raise ModelIntegrityError(f"cannot read the sequential tables of {root}: {exc}") from exc
    rules = _conform(rules, SEQUENTIAL_RULES_SCHEMA, str(root / SEQUENTIAL_RULES_FILE))
    repeat = _conform(repeat, REPEAT_SCHEMA, str(root / REPEAT_FILE))
    part = part_from_manifest(manifest, rules, repeat, where)
    check_sequential(part, n_items, where)
    return part


def _staging_prefix(target: Path) -> str:
    # the writer's pid in the name tells a staging directory of a killed writer from a live one
    return f".{target.name}.{os.getpid()}."


def _remove_stale_staging(target: Path) -> None:
    """Remove the staging directories a killed writer of ``target`` left beside it (those of
    writers still running are theirs)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^/]*\.(tmp|old)")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() \
                and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing this target yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the system or the file system cannot, and the caller falls back to two renames."""
    libc = _libc()
    renameat2 = getattr(libc, "renameat2", None) if libc is not None else None
    if renameat2 is None:
        return False
    import ctypes

    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@functools.cache
def _libc() -> Any:
    import ctypes  # only when a model is replaced: no start-up cost

    try:
        return ctypes.CDLL(None, use_errno=True)  # this process's symbols, libc's among them
    except OSError:
        return None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a model's manifest (format name and version), without touching tables."""
    root = Path(path)
    manifest_path = root / MANIFEST_FILE
    if not root.is_dir():
        raise ModelError(f"no model directory at {root}")
    if not manifest_path.is_file():
        raise ModelFormatError(f"{root} is not a basketry model: {MANIFEST_FILE} is missing")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{manifest_path} does not describe a {FORMAT_NAME} artifact")
    version = manifest.get("format_version")
    # bool is an int to Python: format_version true would read as 1
    if not isinstance(version, int) or isinstance(version, bool) or not \
            1 <= version <= FORMAT_VERSION:
        raise ModelFormatError(
            f"{manifest_path} has format_version {version!r}; "
            f"this basketry reads 1..{FORMAT_VERSION}"
        )
    for key in ("model_version", "files", "counts"):
        if key not in manifest:
            raise ModelFormatError(f"{manifest_path} lacks the field {key!r}")
    for key in ("files", "counts"):
        if not isinstance(manifest[key], dict):
            raise ModelFormatError(f"{manifest_path}: field {key!r} must be an object")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    """Check that every data file exists with the size and SHA-256 the manifest records."""
    files = manifest["files"]
    for name in (ITEMS_FILE, RULES_FILE):
        if name not in files:
            raise ModelFormatError(f"{root / MANIFEST_FILE} does not list {name}")
    for name, meta in files.items():
        if "/" in name or "\\" in name or name.startswith("."):
            raise ModelFormatError(f"{root / MANIFEST_FILE} lists an unsafe file name {name!r}")
        file_path = root / name
        if not file_path.is_file():
            raise ModelIntegrityError(f"{file_path} is missing")
        size = file_path.stat().st_size
        if size != meta.get("bytes"):
            raise ModelIntegrityError(
                f"{file_path} has {size} bytes, the manifest records {meta.get('bytes')} "
                "(truncated or replaced)"
            )
        if sha256_file(file_path) != meta.get("sha256"):
            raise ModelIntegrityError(
                f"{file_path} does not match the SHA-256 in the manifest (modified after writing)"
            )


def read_artifact(path: str | os.PathLike[str], *, verify: bool = True) -> Artifact:
    """Read a model directory: the manifest checked (format, fields, scoring and its
    ``model_version`` against its content), checksums verified (``verify``), the tables
    schema-checked and their content validated (always: see ``basketry.model.validate``)."""
    root = Path(path)
    manifest = read_manifest(root)
    where = str(root / MANIFEST_FILE)
    check_manifest(manifest, where)
    if verify:
        verify_files(root, manifest)
    try:
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, whose import
        # (and pandas', when installed) costs a fresh process about 0.3 s
        items = pq.ParquetFile(root / ITEMS_FILE).read()
        rules = pq.ParquetFile(root / RULES_FILE).read()
    except (OSError, pa.ArrowException) as exc:
        raise ModelIntegrityError(f"cannot read the tables of {root}: {exc}") from exc
    items = _conform(items, ITEMS_SCHEMA, str(root / ITEMS_FILE))
    rules = _conform(rules, RULES_SCHEMA, str(root / RULES_FILE))
    check_counts_match(manifest, items, rules, where)
    n_baskets = manifest["counts"]["n_baskets"]
    check_items(items, n_baskets, str(root / ITEMS_FILE))
    check_rules(rules, items.num_rows, n_baskets, str(root / RULES_FILE))
    return Artifact(path=root, manifest=manifest, items=items, rules=rules,
                    sequential=_read_sequential(root, manifest, items.num_rows))
