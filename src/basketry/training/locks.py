"""Locks that serialise writers of one tracking/registry store across processes.

- SQLite store: an exclusive ``flock`` on a file beside the database (``mlflow.db.lock``);
  every process that opens the database on this machine (or over a file system with working
  ``flock``: a local disk, NFSv4) sees it.
- PostgreSQL store: a session-level ``pg_advisory_lock`` on a connection of its own, so
  writers on any machine are serialised by the database itself.
- Anything else (an ``http(s)`` tracking server, MySQL, MSSQL, Databricks): a ``flock`` under
  ``$BASKETRY_HOME/locks``, which serialises the writers of one machine only.

The kernel drops a ``flock`` and the server an advisory lock when their process dies, so a
killed writer never leaves a stale lock. Waiting is bounded (``BASKETRY_REGISTRY_LOCK_TIMEOUT``
seconds, default 300): past it, :class:`LockTimeout` says which lock was held. Locks are
re-entrant within a process (a second ``with`` on a held lock does nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from basketry._filelock import POLL_SECONDS, file_lock

DEFAULT_TIMEOUT = 300.0
#: How often a waiter retries (a lock is usually held for about a second).

_held: set[str] = set()  # the locks this process holds (re-entrancy)


class LockTimeout(Exception):
    """The lock stayed held by another process for longer than the timeout."""


def lock_timeout() -> float:
    text = os.environ.get("BASKETRY_REGISTRY_LOCK_TIMEOUT", "")
    try:
        return float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def scheme(uri: str) -> str:
    """``sqlite``, ``postgresql``, ``file``, ``http``... (the driver after ``+`` dropped)."""
    if "://" not in uri:
        return "file"
    return uri.split(":", 1)[0].split("+", 1)[0].lower()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for an in-memory database)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def authoritative(uri: str) -> bool:
    """Whether the store's lock serialises every writer (not only this machine's)."""
    return scheme(uri) in ("sqlite", "postgresql", "file")


def _home_lock_path(uri: str) -> Path:
    from basketry.training.tracking import basketry_home

    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return basketry_home() / "locks" / f"store-{digest}.lock"


def lock_file(uri: str) -> Path:
    """The file whose ``flock`` serialises the store's writers (not used for PostgreSQL)."""
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".lock")
    if scheme(uri) == "file":
        root = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
        return root / ".basketry.lock"
    return _home_lock_path(uri)


@contextlib.contextmanager
def _flock(path: Path, what: str, timeout: float) -> Iterator[None]:
    def timed_out(path: Path, timeout: float) -> Exception:
        return LockTimeout(f"{what}: the lock {path} stayed held by another process for "
                           f"{timeout:g} s (BASKETRY_REGISTRY_LOCK_TIMEOUT)")

    with file_lock(path, timeout, timed_out) as fd:
        # who holds it, for a person looking at a stuck lock (the lock is the flock, not this)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield


def advisory_key(uri: str) -> int:
    """The signed 64-bit key of basketry's PostgreSQL advisory lock."""
    digest = hashlib.sha256(b"basketry.registry").digest()[:8]
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def _pg_advisory(uri: str, what: str, timeout: float) -> Iterator[None]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            key = advisory_key(uri)
            deadline = time.monotonic() + timeout
            while not connection.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"),
                                         {"k": key}).scalar():
                connection.rollback()  # no transaction left open while waiting
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{what}: the PostgreSQL advisory lock {key} stayed held "
                                      f"by another session for {timeout:g} s "
                                      "(BASKETRY_REGISTRY_LOCK_TIMEOUT)")
                time.sleep(POLL_SECONDS)
            connection.commit()
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # closing the session releases it anyway
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"),
                                       {"k": key})
                    connection.commit()
    finally:
        engine.dispose()


@contextlib.contextmanager
def store_lock(uri: str, what: str = "registry", timeout: float | None = None
               ) -> Iterator[None]:
    """Hold the store's writer lock (see the module's docstring) for the ``with`` body."""
    if sqlite_path(uri) is None and uri.startswith("sqlite:"):
        yield  # an in-memory database: nothing shared
        return
    key = uri
    if key in _held:
        yield
        return
    timeout = lock_timeout() if timeout is None else timeout
    held = (_pg_advisory(uri, what, timeout) if scheme(uri) == "postgresql"
            else _flock(lock_file(uri), what, timeout))
    with held:
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
