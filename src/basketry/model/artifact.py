"""Writing and reading model artifacts: a directory of Parquet tables and a JSON manifest.

Writing is atomic (a temporary sibling directory renamed into place), so a failed write never
leaves a half-written model. Reading verifies the format version and every file's SHA-256 before
any table is parsed. No pickle is involved anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from basketry.model.errors import ModelError, ModelFormatError, ModelIntegrityError
from basketry.model.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    MANIFEST_FILE,
    RULES_FILE,
    RULES_SCHEMA,
)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """The verified content of a model directory, before any index is built."""

    path: Path
    manifest: dict[str, Any]
    items: pa.Table
    rules: pa.Table

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


def _conform(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ModelError(f"{what} table lacks column(s) {missing}; it has {table.column_names}")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ModelError(f"{what} table does not fit the model format: {exc}") from exc


def items_table(
    items: Sequence[str] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    labels: Sequence[str | None] | np.ndarray | None = None,
) -> pa.Table:
    """The items table from parallel arrays indexed by item id."""
    labels_arr = pa.nulls(len(items), pa.string()) if labels is None else pa.array(
        [None if x is None or x != x else str(x) for x in labels], pa.string()
    )
    return pa.table(
        {
            "item": pa.array([str(x) for x in items], pa.string()),
            "label": labels_arr,
            "count": pa.array(np.asarray(counts, dtype=np.int64)),
        },
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
) -> Path:
    """Write a model directory at ``path`` atomically and return its path.

    ``items`` follows ``ITEMS_SCHEMA`` (row number = item id) and ``rules`` follows
    ``RULES_SCHEMA`` (antecedent and consequent are lists of item ids). The model version is
    derived from the content (data files, parameters, dataset fingerprint), so the same data and
    parameters always give the same version.
    """
    target = Path(path)
    if target.exists() and not overwrite and any(target.iterdir() if target.is_dir() else [1]):
        raise ModelError(f"{target} already exists; choose another path or allow overwrite")
    items = _conform(items, ITEMS_SCHEMA, "items")
    rules = _conform(rules, RULES_SCHEMA, "rules")
    n_items = items.num_rows
    for column in ("antecedent", "consequent"):
        flat = pc.list_flatten(rules.column(column))
        if len(flat) and (pc.min(flat).as_py() < 0 or pc.max(flat).as_py() >= n_items):
            raise ModelError(f"rules.{column} refers to an item id outside 0..{n_items - 1}")

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        files = {
            ITEMS_FILE: _write_table(items, staging / ITEMS_FILE),
            RULES_FILE: _write_table(rules, staging / RULES_FILE),
        }
        content = json.dumps(
            {"files": files, "parameters": parameters, "scoring": scoring or {},
             "fingerprint": (dataset or {}).get("fingerprint")},
            sort_keys=True, default=str,
        )
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model_version": hashlib.sha256(content.encode()).hexdigest()[:16],
            "basketry_version": _basketry_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": parameters,
            "scoring": scoring or {},
            "counts": {
                "n_baskets": int(n_baskets),
                "n_items": n_items,
                "n_rules": rules.num_rows,
            },
            "dataset": dataset or {},
            "metrics": metrics or {},
            "files": files,
            **(extra or {}),
        }
        with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True, default=_json_default)
            fh.write("\n")
        if target.exists():
            # swap: old model aside, new one in, old one removed; a crash leaves one of the two
            aside = target.with_name(f".{target.name}.old")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(target, aside)
            os.replace(staging, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


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
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFormatError(
            f"{manifest_path} has format_version {version!r}; "
            f"this basketry reads 1..{FORMAT_VERSION}"
        )
    for key in ("model_version", "files", "counts"):
        if key not in manifest:
            raise ModelFormatError(f"{manifest_path} lacks the field {key!r}")
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
    """Read a model directory: manifest checked, checksums verified, tables schema-checked."""
    root = Path(path)
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    try:
        items = pq.read_table(root / ITEMS_FILE)
        rules = pq.read_table(root / RULES_FILE)
    except (OSError, pa.ArrowException) as exc:
        raise ModelIntegrityError(f"cannot read the tables of {root}: {exc}") from exc
    items = _conform(items, ITEMS_SCHEMA, f"{root / ITEMS_FILE}: items")
    rules = _conform(rules, RULES_SCHEMA, f"{root / RULES_FILE}: rules")
    counts = manifest["counts"]
    if counts.get("n_items") != items.num_rows or counts.get("n_rules") != rules.num_rows:
        raise ModelIntegrityError(
            f"{root}: the manifest counts {counts} disagree with the tables "
            f"({items.num_rows} items, {rules.num_rows} rules)"
        )
    return Artifact(path=root, manifest=manifest, items=items, rules=rules)
