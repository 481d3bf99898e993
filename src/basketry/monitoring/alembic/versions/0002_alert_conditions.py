"""Alerts: the condition each one is about, at most one open per condition, webhook delivery.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN_ALERT = "resolved_us IS NULL"


def upgrade() -> None:
    op.add_column("alerts", sa.Column("condition", sa.String(200), nullable=True))
    op.add_column("alerts", sa.Column("notified_us", sa.BigInteger, nullable=True))
    op.add_column("alerts", sa.Column("resolved_notified_us", sa.BigInteger, nullable=True))
    op.add_column("alerts", sa.Column("clear_count", sa.Integer, nullable=False,
                                      server_default="0"))
    op.add_column("alerts", sa.Column("last_clear_end_us", sa.BigInteger, nullable=True))
    # rows written before this revision get the condition their kind and version name
    op.execute("UPDATE alerts SET condition = kind || '|' || COALESCE(model_version, '')")
    # a second open alert of one condition left by a process without this index: keep the
    # oldest open, resolve the others at their own time
    op.execute("UPDATE alerts SET resolved_us = time_us WHERE resolved_us IS NULL AND id > "
               "(SELECT MIN(a.id) FROM alerts a WHERE a.condition = alerts.condition "
               "AND a.resolved_us IS NULL)")
    op.create_index("uq_alerts_open_condition", "alerts", ["condition"], unique=True,
                    sqlite_where=sa.text(OPEN_ALERT), postgresql_where=sa.text(OPEN_ALERT))


def downgrade() -> None:
    op.drop_index("uq_alerts_open_condition", "alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("last_clear_end_us")
        batch.drop_column("clear_count")
        batch.drop_column("resolved_notified_us")
        batch.drop_column("notified_us")
        batch.drop_column("condition")
