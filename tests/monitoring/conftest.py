"""Stores to test against, for real: a SQLite file, and PostgreSQL when one is configured.

PostgreSQL: ``BASKETRY_TEST_POSTGRES`` is a SQLAlchemy URL to an empty database (``.ci/run``
creates one; locally ``pg_ctlcluster 15 main start`` and the same role and database). Each
test gets a schema of its own in it (``search_path`` in the URL), dropped afterwards. Without
it the PostgreSQL cases are skipped, but under ``CI`` they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

pytest.importorskip("sqlalchemy", reason="the monitor extra is not installed")
pytest.importorskip("alembic", reason="the monitor extra is not installed")


def postgres_url() -> str | None:
    url = os.environ.get("BASKETRY_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI: PostgreSQL must be running with BASKETRY_TEST_POSTGRES set")
        pytest.skip("no PostgreSQL (set BASKETRY_TEST_POSTGRES to an empty database's URL; "
                    "pg_ctlcluster 15 main start, see .ci/run)")
    pytest.importorskip("psycopg2", reason="psycopg2 is needed for a PostgreSQL store")
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh, empty schema of the test PostgreSQL database."""
    import sqlalchemy as sa

    base = postgres_url()
    assert base is not None
    name = f"m_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Every store test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'monitoring.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    from basketry.monitoring.store import MonitorStore

    s = MonitorStore(store_url, connect_timeout=5)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def no_receipt_margin(monkeypatch):
    """Stored windows trust receipts up to the computation's start (the margin, 60 s in
    production, is for transactions committing late; tests add orders and report at once)."""
    from basketry.monitoring import drift, performance

    monkeypatch.setattr(performance, "RECEIPT_MARGIN_US", 0)
    monkeypatch.setattr(drift, "RECEIPT_MARGIN_US", 0)
