"""Events carry their basket and returned items as two JSON-array columns; ``event_items`` goes.

One row an event instead of one plus one per item (ten in a typical answer) cut the writer's
work per event by about two thirds, the cost capture adds to a serving host
(``docs/monitoring.md``). Rows written before are carried over in order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BASKET, RETURNED = 0, 1
#: events moved per statement batch
CHUNK = 20_000


def _dumps(items: list[str]) -> str:
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def upgrade() -> None:
    op.add_column("recommendation_events",
                  sa.Column("basket", sa.Text, nullable=False, server_default="[]"))
    op.add_column("recommendation_events",
                  sa.Column("returned", sa.Text, nullable=False, server_default="[]"))
    connection = op.get_bind()
    last = -1
    while True:  # the old item rows, event by event, in bounded batches
        ids = list(connection.execute(sa.text(
            "SELECT DISTINCT event_id FROM event_items WHERE event_id > :last "
            "ORDER BY event_id LIMIT :n"), {"last": last, "n": CHUNK}).scalars())
        if not ids:
            break
        lists: dict[int, tuple[list[str], list[str]]] = {i: ([], []) for i in ids}
        for event_id, role, item in connection.execute(sa.text(
                "SELECT event_id, role, item FROM event_items "
                "WHERE event_id >= :a AND event_id <= :b ORDER BY event_id, role, position"),
                {"a": ids[0], "b": ids[-1]}):
            lists[event_id][0 if role == BASKET else 1].append(item)
        connection.execute(
            sa.text("UPDATE recommendation_events SET basket = :b, returned = :r "
                    "WHERE id = :id"),
            [{"id": i, "b": _dumps(b), "r": _dumps(r)} for i, (b, r) in lists.items()])
        last = ids[-1]
    op.drop_table("event_items")


def downgrade() -> None:
    op.create_table(
        "event_items",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True),
        sa.Column("role", sa.SmallInteger, primary_key=True),
        sa.Column("position", sa.SmallInteger, primary_key=True),
        sa.Column("item", sa.Text, nullable=False),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, basket, returned FROM recommendation_events"))
    batch: list[dict[str, object]] = []
    for event_id, basket, returned in rows:
        for role, text in ((BASKET, basket), (RETURNED, returned)):
            batch.extend({"e": event_id, "r": role, "p": p, "i": item}
                         for p, item in enumerate(json.loads(text)))
        if len(batch) >= CHUNK:
            _insert_items(connection, batch)
            batch = []
    _insert_items(connection, batch)
    with op.batch_alter_table("recommendation_events") as b:
        b.drop_column("returned")
        b.drop_column("basket")


def _insert_items(connection: sa.Connection, batch: list[dict[str, object]]) -> None:
    if batch:
        connection.execute(sa.text("INSERT INTO event_items (event_id, role, position, item) "
                                   "VALUES (:e, :r, :p, :i)"), batch)
