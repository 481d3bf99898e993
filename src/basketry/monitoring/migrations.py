"""Bringing a store's schema to the newest revision, once, however many processes start.

The revisions are alembic scripts shipped in this package (``alembic/versions``). Every
process may call :func:`migrate` at start; one of them migrates, the others wait and then
find the store at head (alembic does nothing then). The lock that serialises them:

- SQLite: an exclusive ``flock`` on a file beside the database (``monitoring.db.lock``),
  held around the whole upgrade (SQLite's own locks do not span alembic's steps);
- PostgreSQL: a transaction-level advisory lock taken in the very transaction that runs the
  (transactional) DDL, so it is released with the commit or when a killed process's
  session ends;
- anything else: a ``flock`` under ``$BASKETRY_HOME/locks`` (this machine's processes only).

Waiting is bounded by the timeout given (the store's connect timeout): past it, a
:class:`~basketry.monitoring.store.MonitorStoreError` says which lock was held.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from basketry._env import basketry_home
from basketry._filelock import POLL_SECONDS, file_lock

if TYPE_CHECKING:
    import sqlalchemy as sa

SCRIPTS = Path(__file__).with_name("alembic")
#: The newest revision of ``alembic/versions`` (a test holds it to alembic's own head): a store
#: already there is seen without importing alembic, a third of a second of every serving
#: worker's start (its writer process opens the store while the worker loads its model).
HEAD = "0003"
#: The advisory lock key of the monitoring migrations (distinct from the registry's).
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"basketry.monitoring.migrate").digest()[:8],
                              "big", signed=True)


class MigrationLockTimeout(Exception):
    """Another process held the migration lock for longer than the timeout."""


def head_revision() -> str:
    """The newest revision shipped with this basketry."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(SCRIPTS)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The store's revision (``None``: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def at_head(engine: sa.Engine) -> bool:
    """The store is at :data:`HEAD` (read with SQLAlchemy alone; a store without alembic's
    table, or one that cannot be read, is not)."""
    import sqlalchemy as sa

    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:
        return False
    return [r[0] for r in rows] == [HEAD]


def migrate(engine: sa.Engine, timeout: float) -> None:
    """Upgrade the store behind ``engine`` to head, under the migration lock (idempotent)."""
    if at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    with _locked(engine, timeout) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _locked(engine: sa.Engine, timeout: float) -> Iterator[sa.Connection]:
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            _pg_lock(connection, timeout)
            yield connection  # committed (and the lock released) by engine.begin()
        return
    with _flock(_lock_file(engine), timeout), engine.connect() as connection:
        yield connection
        connection.commit()


def _pg_lock(connection: sa.Connection, timeout: float) -> None:
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    try_lock = sa.text("SELECT pg_try_advisory_xact_lock(:k)")
    while not connection.execute(try_lock, {"k": ADVISORY_KEY}).scalar():
        if time.monotonic() >= deadline:
            raise MigrationLockTimeout(
                f"the PostgreSQL advisory lock {ADVISORY_KEY} of the monitoring migrations "
                f"stayed held by another session for {timeout:g} s")
        time.sleep(POLL_SECONDS)


def _lock_file(engine: sa.Engine) -> Path:
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        db = Path(database)
        return db.with_name(db.name + ".lock")
    digest = hashlib.sha256(str(engine.url).encode()).hexdigest()[:16]
    return basketry_home() / "locks" / f"monitoring-{digest}.lock"


def _flock(path: Path, timeout: float) -> contextlib.AbstractContextManager[int]:
    return file_lock(path, timeout, lambda path, timeout: MigrationLockTimeout(
        f"the migration lock {path} stayed held by another process for {timeout:g} s"))
