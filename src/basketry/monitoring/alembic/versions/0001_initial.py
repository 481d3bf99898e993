"""The first monitoring schema: events, orders, and the tables the later parts fill.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recommendation_events",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(16), nullable=False),
        sa.Column("n_basket", sa.Integer, nullable=False),
        sa.Column("n_returned", sa.Integer, nullable=False),
        sa.Column("n_rules", sa.Integer, nullable=False),
        sa.Column("n_fallback", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.CheckConstraint("endpoint IN ('single', 'batch', 'associations')",
                           name="ck_recommendation_events_endpoint"),
    )
    op.create_index("ix_recommendation_events_time", "recommendation_events", ["time_us"])
    op.create_index("ix_recommendation_events_version_time", "recommendation_events",
                    ["model_version", "time_us"])
    op.create_index("ix_recommendation_events_request", "recommendation_events",
                    ["request_id"])
    op.create_table(
        "event_items",
        # no foreign key: the writer's hottest insert (see basketry.monitoring.schema)
        sa.Column("event_id", Key, primary_key=True),
        sa.Column("role", sa.SmallInteger, primary_key=True),
        sa.Column("position", sa.SmallInteger, primary_key=True),
        sa.Column("item", sa.Text, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("n_items", sa.Integer, nullable=False),
        sa.Column("customer_key", sa.String(64), nullable=True),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("order_id", name="uq_orders_order_id"),
    )
    op.create_index("ix_orders_time", "orders", ["time_us"])
    op.create_table(
        "order_items",
        sa.Column("order_pk", Key, sa.ForeignKey("orders.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("item", sa.Text, primary_key=True),  # an order's items are unique
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "order_requests",
        sa.Column("order_pk", Key, sa.ForeignKey("orders.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
    )
    op.create_index("ix_order_requests_request", "order_requests", ["request_id"])
    op.create_table(
        "windows",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("computed_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("kind", "model_version", "window", "start_us", name="uq_windows"),
    )
    op.create_index("ix_windows_start", "windows", ["start_us"])
    op.create_table(
        "drift_results",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("statistic", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Column("computed_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_drift_results_start", "drift_results", ["start_us"])
    op.create_table(
        "alerts",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Column("resolved_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_alerts_time", "alerts", ["time_us"])


def downgrade() -> None:
    for table in ("alerts", "drift_results", "windows", "order_requests", "order_items",
                  "orders", "event_items", "recommendation_events"):
        op.drop_table(table)
