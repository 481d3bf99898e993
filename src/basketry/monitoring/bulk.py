"""Bulk inserts at the driver's speed, and the keys of the rows they create.

SQLAlchemy Core's ``executemany`` builds a parameter dictionary per row (about 4 us each),
which alone would cap the writer near 10,000 events/s at ten item rows an event. These
helpers hand plain tuples to the driver's own bulk path instead (SQLite's ``executemany``,
psycopg2's ``COPY``), and fall back to Core for any other driver.
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


def insert_keyed(connection: sa.Connection, table: sa.Table, columns: Sequence[str],
                 rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert ``rows`` into ``table`` (an autoincrementing ``id``) and return their ids in
    the order of ``rows``; call it inside a transaction."""
    if not rows:
        return []
    dialect = connection.dialect
    if dialect.name == "sqlite":
        # The rows of one executemany in one write transaction take max(id)+1, +2...: SQLite
        # gives a new rowid as max+1, and the transaction's lock keeps every other writer out
        # until the commit. So the last rowid gives all of them.
        insert_rows(connection, table, columns, rows)
        last = connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
        return list(range(last - len(rows) + 1, last + 1))
    if dialect.name == "postgresql":
        # The keys drawn from the table's sequence in one statement, then written with the rows
        # (concurrent writers draw distinct values; they need not be consecutive).
        ids = list(connection.execute(
            sa.text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                    "FROM generate_series(1, :n)"), {"n": len(rows)}).scalars())
        insert_rows(connection, table, ["id", *columns],
                    [(i, *r) for i, r in zip(ids, rows, strict=True)])
        return ids
    result = connection.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True),
        [dict(zip(columns, r, strict=True)) for r in rows])
    return list(result.scalars())


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
