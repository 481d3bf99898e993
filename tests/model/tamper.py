"""Tamper with a model directory and re-sign it: what someone who edits a model can do.

After an edit, ``resign`` recomputes every file's SHA-256, size and row count in the manifest
and the manifest's ``model_version``, so checksums and version match again and only the
content validation can tell that the model is unsound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from basketry.model._version import manifest_version
from basketry.model.artifact import sha256_file
from basketry.model.format import MANIFEST_FILE

Manifest = dict[str, Any]


def read_json(model: Path) -> Manifest:
    return json.loads((model / MANIFEST_FILE).read_text(encoding="utf-8"))


def write_json(model: Path, manifest: Manifest) -> None:
    (model / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def resign(model: Path, *, version: bool = True) -> None:
    """Recompute the manifest's file entries (and, with ``version``, its model_version); an
    entry holding ``"resign": false`` is left as it is (the key is removed)."""
    manifest = read_json(model)
    for name, meta in manifest["files"].items():
        path = model / name
        if isinstance(meta, dict) and meta.pop("resign", True) and path.is_file():
            meta.update(sha256=sha256_file(path), bytes=path.stat().st_size,
                        rows=pq.ParquetFile(path).metadata.num_rows)
    if version:
        manifest["model_version"] = manifest_version(manifest)
    write_json(model, manifest)


def tamper_table(model: Path, name: str, edit: Callable[[pa.Table], pa.Table]) -> None:
    """Rewrite the table ``name`` (e.g. ``rules.parquet``) as ``edit`` returns it, re-signed."""
    pq.write_table(edit(pq.read_table(model / name)), model / name)
    resign(model)


def tamper_manifest(model: Path, edit: Callable[[Manifest], None], *,
                    version: bool = True) -> None:
    """Edit the manifest in place with ``edit``, re-signed (``version=False``: the edit's own
    model_version is kept, as a forger who does not know how it is derived leaves it)."""
    manifest = read_json(model)
    edit(manifest)
    write_json(model, manifest)
    if isinstance(manifest.get("files"), dict):
        resign(model, version=version)


def set_cell(table: pa.Table, column: str, row: int, value: Any,
             type_: pa.DataType | None = None) -> pa.Table:
    """``table`` with ``column[row]`` replaced by ``value`` (as ``type_``, default the
    column's type)."""
    values = table.column(column).to_pylist()
    values[row] = value
    index = table.column_names.index(column)
    field = table.schema.field(column)
    new_type = type_ or field.type
    return table.set_column(index, pa.field(column, new_type),
                            pa.array(values, type=new_type))
