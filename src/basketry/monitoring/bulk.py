"""Bulk inserts at the driver's speed.

SQLAlchemy Core's ``executemany`` builds a parameter dictionary per row (about 4 us each),
as much as the writer's whole insert of an event. :func:`insert_rows` hands plain tuples to
the driver's own bulk path instead (multi-row ``INSERT ... VALUES`` on SQLite, ``COPY`` with
psycopg2), and falls back to Core for any other driver.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

# COPY's text format: these characters are escaped, None is \\N.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def insert_rows(connection: sa.Connection, table: sa.Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``."""
    if not rows:
        return
    names = ", ".join(columns)
    dialect = connection.dialect
    if dialect.name == "sqlite":
        # Multi-row INSERT ... VALUES statements, as few as SQLite's variable limit allows,
        # rather than executemany: the driver releases the GIL at every statement step, so
        # executemany's one step per row starved this thread behind a busy event loop in
        # the same process (a serving worker), and slowed that loop with the hand-overs.
        width = len(columns)
        per = max(1, min(len(rows), _sqlite_variables(connection) // width))
        row_marks = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start:start + per]
            connection.exec_driver_sql(
                f"INSERT INTO {table.name} ({names}) VALUES "
                + ", ".join([row_marks] * len(chunk)),
                tuple(v for row in chunk for v in row))
    elif dialect.driver == "psycopg2":
        # COPY: the server's bulk load, several times faster than INSERT ... VALUES pages
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.copy_expert(f"COPY {table.name} ({names}) FROM STDIN",
                               io.StringIO("".join(_copy_line(r) for r in rows)))
        finally:
            cursor.close()
    else:
        connection.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])


def _sqlite_variables(connection: sa.Connection) -> int:
    """SQLite's limit of ``?`` in one statement (999 before 3.32, 32766 or more after)."""
    raw = connection.connection.dbapi_connection
    try:
        return int(raw.getlimit(9))  # type: ignore[union-attr]  # SQLITE_LIMIT_VARIABLE_NUMBER
    except (AttributeError, TypeError):  # a driver without getlimit (Python < 3.11)
        return 999


def _copy_line(row: tuple[Any, ...]) -> str:
    return "\t".join("\\N" if v is None else str(v).translate(_COPY_ESCAPES)
                     for v in row) + "\n"
