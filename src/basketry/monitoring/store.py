"""The monitoring store: recommendation events and completed orders in SQL.

SQLite by default (a file under ``$BASKETRY_HOME``), PostgreSQL by URL, through SQLAlchemy 2
Core: rows go in by bulk ``executemany`` (no ORM objects per row). Constructing a
:class:`MonitorStore` opens nothing; :meth:`MonitorStore.migrate` is the first connection
and fails, within the connect timeout, with one :class:`MonitorStoreError` line that names
the URL (its password masked). SQLAlchemy is imported here, never by ``basketry.monitoring``
itself, so a service with monitoring off does not need it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from basketry.monitoring import bulk, migrations, schema
from basketry.monitoring.events import RecommendationEvent
from basketry.monitoring.orders import Order, parse_orders
from basketry.monitoring.privacy import customer_key, mask_url
from basketry.monitoring.settings import MonitorSettings

US = 1_000_000
#: Orders written per statement (a bounded transaction whatever the file's size).
ORDER_CHUNK = 5_000
#: Rows deleted per transaction by the retention (so writers are never held up for long).
DELETE_CHUNK = 20_000
EVENT_COLUMNS = ("time_us", "request_id", "model_version", "endpoint", "n_basket", "n_returned",
                 "n_rules", "n_fallback", "latency_ms", "basket", "returned")


class MonitorStoreError(Exception):
    """The store cannot be used: one line naming the URL (password masked) and why."""


@dataclass(frozen=True, slots=True)
class OrdersAdded:
    """What :meth:`MonitorStore.add_orders` did: orders new to the store, and orders whose
    id was already there (a re-sent order: left as it was, not counted twice)."""

    new: int
    existing: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """Rows removed by the retention."""

    events: int
    orders: int


class MonitorStore:
    """Events and orders in the database at ``url`` (see the module's docstring)."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0,
                 customer_secret: str | None = None) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self._secret = customer_secret
        try:
            self.engine = _engine(url, connect_timeout)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
            raise MonitorStoreError(f"monitoring store {mask_url(url)}: not a usable "
                                    f"database URL ({_reason(exc)})") from None

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> MonitorStore:
        return cls(settings.url(), connect_timeout=settings.connect_timeout,
                   customer_secret=settings.customer_key)

    def __repr__(self) -> str:
        return f"MonitorStore({mask_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Database and file system failures as one ``MonitorStoreError`` line."""
        dbapi = getattr(self.engine.dialect, "dbapi", None)
        driver_error = getattr(dbapi, "Error", sa.exc.SQLAlchemyError)  # bulk.py's raw cursors
        try:
            yield
        except (sa.exc.SQLAlchemyError, driver_error, OSError,
                migrations.MigrationLockTimeout) as exc:
            raise MonitorStoreError(f"monitoring store {mask_url(self.url)}: {doing} failed: "
                                    f"{_reason(exc)}") from None

    # -- schema --------------------------------------------------------------------------

    def migrate(self) -> None:
        """Connect and bring the schema to head (idempotent; safe from N processes at once)."""
        with self._errors("connecting"):
            if (path := self._sqlite_file()) is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        with self._errors("migrating the schema"):
            migrations.migrate(self.engine, self.connect_timeout)

    def revision(self) -> str | None:
        """The schema revision of the store (``None``: not migrated)."""
        if (path := self._sqlite_file()) is not None and not path.exists():
            return None  # not created by asking
        with self._errors("reading the schema revision"):
            return migrations.current_revision(self.engine)

    def _sqlite_file(self) -> Path | None:
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            return Path(database)
        return None

    # -- events --------------------------------------------------------------------------

    def add_events(self, events: Sequence[RecommendationEvent]) -> int:
        """Write ``events`` in one transaction (all or none); raises on a store failure."""
        return self.add_event_rows([
            (e.time, e.request_id, e.model_version, e.endpoint, e.basket, e.returned, e.n_rules,
             e.n_fallback, e.latency_ms) for e in events])

    def add_event_rows(self, events: Sequence[Sequence[Any]]) -> int:
        """:meth:`add_events` for events as rows: :class:`RecommendationEvent`'s fields in
        order (what a serving worker sends its writer process)."""
        if not events:
            return 0
        encode = schema.encode_items
        rows = [(round(t * US), rid, version, endpoint, len(basket), len(returned), n_rules,
                 n_fallback, float(latency), encode(basket), encode(returned))
                for t, rid, version, endpoint, basket, returned, n_rules, n_fallback, latency
                in events]
        with self._errors("writing events"), self.engine.begin() as connection:
            bulk.insert_rows(connection, schema.recommendation_events, EVENT_COLUMNS, rows)
        return len(events)

    def read_events(self, start: float | None = None, end: float | None = None,
                    limit: int | None = None) -> list[RecommendationEvent]:
        """Events with ``start <= time < end`` (seconds since the epoch), oldest first."""
        t = schema.recommendation_events
        query = sa.select(t).order_by(t.c.time_us, t.c.id)
        if start is not None:
            query = query.where(t.c.time_us >= round(start * US))
        if end is not None:
            query = query.where(t.c.time_us < round(end * US))
        if limit is not None:
            query = query.limit(limit)
        with self._errors("reading events"), self.engine.connect() as connection:
            rows = connection.execute(query).all()
        decode = schema.decode_items
        return [RecommendationEvent(
            time=r.time_us / US, request_id=r.request_id, model_version=r.model_version,
            endpoint=r.endpoint, basket=tuple(decode(r.basket)),
            returned=tuple(decode(r.returned)), n_rules=r.n_rules,
            n_fallback=r.n_fallback, latency_ms=r.latency_ms) for r in rows]

    def count(self, table: str) -> int:
        """Rows in one of the store's tables (``orders``, ``recommendation_events``...)."""
        t = schema.metadata.tables[table]
        with self._errors(f"counting {table}"), self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar())

    # -- orders --------------------------------------------------------------------------

    def add_orders(self, orders: Iterable[Order | Mapping[str, Any]]) -> OrdersAdded:
        """Validate then store ``orders``, idempotent by order id: an order whose id is
        already stored (or repeated in ``orders``) is left as it was and counted
        ``existing``. Raises :class:`~basketry.monitoring.orders.OrderError` (naming the
        field) before anything is written when one order is invalid."""
        checked = parse_orders(orders)
        new = 0
        now = round(time.time() * US)
        with self._errors("writing orders"):
            for chunk in _chunks(checked, ORDER_CHUNK):
                new += self._add_order_chunk(chunk, now)
        return OrdersAdded(new=new, existing=len(checked) - new)

    def _add_order_chunk(self, chunk: Sequence[Order], now: int) -> int:
        unique: dict[str, Order] = {}
        for order in chunk:
            unique.setdefault(order.order_id, order)
        rows = [{"order_id": o.order_id, "time_us": round(o.time * US), "n_items": len(o.items),
                 "customer_key": customer_key(self._secret, o.customer), "received_us": now}
                for o in unique.values()]
        t = schema.orders
        dialect = self.engine.dialect.name
        insert: Any = (postgresql.insert(t) if dialect == "postgresql"
                       else sqlite.insert(t) if dialect == "sqlite" else None)
        with self.engine.begin() as connection:
            if insert is None:  # another backend: skip the ids already there (one writer)
                there = set(connection.execute(
                    sa.select(t.c.order_id).where(t.c.order_id.in_(list(unique)))).scalars())
                rows = [r for r in rows if r["order_id"] not in there]
                created = [(i, r["order_id"]) for i, r in zip(
                    _insert_ids(connection, t, rows), rows, strict=True)] if rows else []
            else:  # a concurrent writer of the same id loses cleanly: ON CONFLICT DO NOTHING
                created = list(connection.execute(
                    insert.on_conflict_do_nothing(index_elements=["order_id"])
                    .returning(t.c.id, t.c.order_id), rows)) if rows else []
            items, requests = [], []
            for pk, order_id in created:
                order = unique[order_id]
                items += [(pk, p, item) for p, item in enumerate(order.items)]
                requests += [(pk, r) for r in order.request_ids]
            bulk.insert_rows(connection, schema.order_items, ("order_pk", "position", "item"),
                             items)
            bulk.insert_rows(connection, schema.order_requests, ("order_pk", "request_id"),
                             requests)
        return len(created)

    def read_orders(self, start: float | None = None,
                    end: float | None = None) -> list[dict[str, Any]]:
        """Orders with ``start <= time < end``, oldest first, as stored (customer keyed)."""
        t = schema.orders
        query = sa.select(t).order_by(t.c.time_us, t.c.id)
        if start is not None:
            query = query.where(t.c.time_us >= round(start * US))
        if end is not None:
            query = query.where(t.c.time_us < round(end * US))
        with self._errors("reading orders"), self.engine.connect() as connection:
            rows = connection.execute(query).all()
            ids = [r.id for r in rows]
            items: dict[int, list[str]] = {}
            requests: dict[int, list[str]] = {}
            for chunk in _chunks(ids, 10_000):
                oi, orq = schema.order_items, schema.order_requests
                for pk, item in connection.execute(
                        sa.select(oi.c.order_pk, oi.c.item).where(oi.c.order_pk.in_(chunk))
                        .order_by(oi.c.order_pk, oi.c.position)):
                    items.setdefault(pk, []).append(item)
                for pk, rid in connection.execute(
                        sa.select(orq.c.order_pk, orq.c.request_id)
                        .where(orq.c.order_pk.in_(chunk))):
                    requests.setdefault(pk, []).append(rid)
        return [{"order_id": r.order_id, "time": r.time_us / US, "items": items.get(r.id, []),
                 "customer_key": r.customer_key, "request_ids": sorted(requests.get(r.id, []))}
                for r in rows]

    # -- retention -----------------------------------------------------------------------

    def delete_older_than(self, days: float, *, now: float | None = None) -> Deleted:
        """Delete events and orders older than ``days`` days (by their own time), in bounded
        transactions; the tables the later parts compute are left alone."""
        if days < 0:
            raise ValueError("days must be >= 0")
        cutoff = round(((time.time() if now is None else now) - days * 86_400) * US)
        with self._errors("deleting old rows"):
            events = self._delete_before(schema.recommendation_events, cutoff, [])
            orders = self._delete_before(schema.orders, cutoff,
                                         [(schema.order_items, "order_pk"),
                                          (schema.order_requests, "order_pk")])
        self.analyze()
        return Deleted(events=events, orders=orders)

    def analyze(self) -> None:
        """Refresh the planner's statistics (``ANALYZE``). SQLite keeps none by itself, and
        without them it may join the big tables in a ruinous order (the attribution join on
        1M events took minutes instead of 0.7 s); PostgreSQL's autovacuum does this anyway."""
        with self._errors("analyzing"), self.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")

    def _delete_before(self, parent: sa.Table, cutoff: int,
                       children: list[tuple[sa.Table, str]]) -> int:
        total = 0
        while True:
            with self.engine.begin() as connection:
                ids = list(connection.execute(
                    sa.select(parent.c.id).where(parent.c.time_us < cutoff)
                    .limit(DELETE_CHUNK)).scalars())
                if not ids:
                    return total
                for child, column in children:  # children first: no cascade needed
                    connection.execute(child.delete().where(child.c[column].in_(ids)))
                connection.execute(parent.delete().where(parent.c.id.in_(ids)))
            total += len(ids)


def _engine(url: str, timeout: float) -> sa.Engine:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": timeout})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "psycopg2":
        connect_args["connect_timeout"] = max(1, round(timeout))
    return sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True,
                            pool_timeout=timeout)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL: readers (reports) never block the writer; NORMAL is durable across crashes of the
    # process (a power loss may lose the last transactions, which monitoring can afford).
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _insert_ids(connection: sa.Connection, table: sa.Table,
                rows: list[dict[str, Any]]) -> list[int]:
    """The keys given to ``rows``, in their order (one bulk insert with RETURNING)."""
    result = connection.execute(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def _reason(exc: BaseException) -> str:
    """The first line of a driver's message, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.split(" (Background on this error")[0]
