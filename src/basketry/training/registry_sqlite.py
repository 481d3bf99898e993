"""``basketry models list`` on the local SQLite store without MLflow: its versions read with
the standard library's ``sqlite3``, read-only.

Importing MLflow and opening its SQLAlchemy store costs seconds (measured: ``basketry models
list`` 3 s of CPU for one version, nearly all of it imports) for what is a few rows of five
tables. The rows read are those MLflow's client returns (``search_model_versions``: versions
not deleted, in the ``default`` workspace; a run's metrics are its latest values). Anything
unexpected (no file, a table or column missing, the model not registered, a database error)
answers ``None`` and the caller asks MLflow, which reports what is wrong in its own words.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from basketry.training.locks import sqlite_path

#: The tables and columns read (MLflow's schema since workspaces, MLflow 3.x).
_SCHEMA = {
    "registered_models": {"name", "workspace"},
    "model_versions": {"name", "version", "creation_time", "run_id", "source", "current_stage",
                       "workspace"},
    "registered_model_aliases": {"alias", "version", "name", "workspace"},
    "model_version_tags": {"key", "value", "name", "version", "workspace"},
    "latest_metrics": {"key", "value", "is_nan", "run_uuid"},
    "runs": {"run_uuid", "status"},
}
#: MLflow keeps a deleted version's row with this stage.
_DELETED = "Deleted_Internal"
_WORKSPACE = "default"


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)


def _schema_ok(con: sqlite3.Connection) -> bool:
    for table, columns in _SCHEMA.items():
        found = {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}
        if not columns <= found:
            return False
    return True


def list_versions(uri: str, name: str, metrics: dict[str, str]) -> list[dict[str, Any]] | None:
    """The versions of ``name`` in the SQLite store at ``uri`` (newest first), each as
    :func:`basketry.training.registry.list_versions` describes it, with the run metrics
    ``metrics`` (output key → MLflow metric name); ``None`` when the store is not a local
    SQLite file this can read."""
    db = sqlite_path(uri)
    if db is None or not db.is_file():
        return None
    try:
        con = _connect(db)
    except sqlite3.Error:
        return None
    try:
        return _read(con, name, metrics)
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _read(con: sqlite3.Connection, name: str, metrics: dict[str, str]
          ) -> list[dict[str, Any]] | None:
    if not _schema_ok(con):
        return None
    where = {"name": name, "workspace": _WORKSPACE}
    if con.execute("SELECT 1 FROM registered_models WHERE name = :name AND "
                   "workspace = :workspace", where).fetchone() is None:
        return None
    aliases: dict[int, list[str]] = {}
    for alias, version in con.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = :name AND "
            "workspace = :workspace", where):
        aliases.setdefault(int(version), []).append(str(alias))
    tags: dict[int, dict[str, str]] = {}
    for key, value, version in con.execute(
            'SELECT "key", value, version FROM model_version_tags WHERE name = :name AND '
            "workspace = :workspace", where):
        tags.setdefault(int(version), {})[str(key)] = value
    rows = []
    for version, created, run_id, source in con.execute(
            "SELECT version, creation_time, run_id, source FROM model_versions WHERE "
            "name = :name AND workspace = :workspace AND "
            "(current_stage IS NULL OR current_stage != :deleted) ORDER BY version DESC",
            {**where, "deleted": _DELETED}):
        status, values = _run(con, run_id, metrics) if run_id else (None, {})
        rows.append({
            "name": name, "version": str(version),
            "aliases": sorted(aliases.get(int(version), [])),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((created or 0) / 1000)),
            "run_id": run_id, "run_status": status, "source": source,
            **{key: values.get(metric) for key, metric in metrics.items()},
            "tags": tags.get(int(version), {}),
        })
    return rows


def _run(con: sqlite3.Connection, run_id: str, metrics: dict[str, str]
         ) -> tuple[str | None, dict[str, float]]:
    """The run's status and the ``metrics`` it logged (both empty when the run is gone)."""
    found = con.execute("SELECT status FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
    if found is None:
        return None, {}
    names = sorted(set(metrics.values()))
    marks = ", ".join("?" * len(names))
    values = {str(key): math.nan if is_nan else float(value)
              for key, value, is_nan in con.execute(
                  f'SELECT "key", value, is_nan FROM latest_metrics WHERE run_uuid = ? AND '
                  f'"key" IN ({marks})', (run_id, *names))}
    return found[0], values
