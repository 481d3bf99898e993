"""The monitoring store's tables (SQLAlchemy Core), as the latest migration leaves them.

Times are integers, microseconds since the epoch in UTC (``*_us``): the same type and the
same arithmetic on SQLite and PostgreSQL, so a window (hour, day, week) is an integer
division in SQL on either backend, and no time zone is ever guessed.

An order's items are a child table, one row per (order, item): ``order_items``, indexed, so
"was this item bought in that order?" is one index lookup. An event's basket and returned
items are two columns of the event itself, each a JSON array of strings in order
(``basket``, ``returned``): an event is one row, which is what the writer's rate rests on
(one row and its indexes an event instead of about ten: ``docs/monitoring.md``). Readers
decode them in Python, a window's events at a time; nothing filters on them in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


class DamagedRowError(ValueError):
    """A stored item list that is not what basketry writes (a JSON array of strings): the
    store was edited by hand or damaged."""


def decode_items(text: Any) -> list[str]:
    """An item-list column back to its items; :class:`DamagedRowError` (one line) when the
    stored value is not a JSON array of strings."""
    try:
        items = _loads(text)
    except (TypeError, ValueError):
        items = None
    if type(items) is not list or not all(type(item) is str for item in items):
        shown = repr(text)
        raise DamagedRowError(
            "the monitoring store holds an item list that is not a JSON array of strings "
            f"({shown[:60]}{'…' if len(shown) > 60 else ''}): it was edited by hand or "
            "damaged; delete the damaged rows or restore the store from a backup")
    return items


def encode_items(items: Sequence[str], _cat: Any = "".join, _sep: Any = '","'.join) -> str:
    """An item list as its column holds it: a compact JSON array of strings, byte for byte
    what :mod:`json` writes (``ensure_ascii=False``). Items with nothing to escape (printable,
    no quote, no backslash: product codes) are joined directly, five times faster than the
    encoder, which matters at the writer's rate; the others go through it."""
    text = _cat(items)
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '["' + _sep(items) + '"]' if items else "[]"
    return str(_json(items))


# An autoincrementing 64-bit key (SQLite only autoincrements a column declared INTEGER).
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

recommendation_events = sa.Table(
    "recommendation_events", metadata,
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
    #: JSON arrays of strings: the basket asked about, and the items returned in rank order
    sa.Column("basket", sa.Text, nullable=False, server_default="[]"),
    sa.Column("returned", sa.Text, nullable=False, server_default="[]"),
    sa.CheckConstraint("endpoint IN ('single', 'batch', 'associations')",
                       name="ck_recommendation_events_endpoint"),
    sa.Index("ix_recommendation_events_time", "time_us"),
    sa.Index("ix_recommendation_events_version_time", "model_version", "time_us"),
    sa.Index("ix_recommendation_events_request", "request_id"),
)

orders = sa.Table(
    "orders", metadata,
    sa.Column("id", Key, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("n_items", sa.Integer, nullable=False),
    #: HMAC-SHA256 hex of the customer under the configured secret (never the identifier).
    sa.Column("customer_key", sa.String(64), nullable=True),
    sa.Column("received_us", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("order_id", name="uq_orders_order_id"),
    sa.Index("ix_orders_time", "time_us"),
)

order_items = sa.Table(
    "order_items", metadata,
    sa.Column("order_pk", Key, sa.ForeignKey("orders.id", ondelete="CASCADE"),
              primary_key=True),
    # keyed by item (an order's items are unique): "was this returned item bought?" is one
    # index lookup
    sa.Column("item", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

order_requests = sa.Table(
    "order_requests", metadata,
    sa.Column("order_pk", Key, sa.ForeignKey("orders.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Index("ix_order_requests_request", "request_id"),
)

# Filled by the later parts (online performance, drift, alerts): a first schema.

#: One computed measure set per (kind, model version, window): ``kind`` is ``replay`` or
#: ``attributed``, ``window`` ``hour``/``day``/``week``/``orders``; ``metrics`` a JSON object.
windows = sa.Table(
    "windows", metadata,
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
    sa.Index("ix_windows_start", "start_us"),
)

#: One drift test of one feature on one window against its reference.
drift_results = sa.Table(
    "drift_results", metadata,
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
    sa.Index("ix_drift_results_start", "start_us"),
)

#: An alert raised (and later resolved) about a model version or the service
#: (``basketry.monitoring.alerts``). ``condition`` names what it is about (``kind|version``);
#: at most one alert per condition is open (``resolved_us`` NULL), which the partial unique
#: index holds however many processes evaluate at once. ``notified_us`` and
#: ``resolved_notified_us``: when the webhook delivered the opening and the resolution (NULL:
#: not delivered, or no webhook). ``clear_count``: consecutive clear windows seen while open
#: (the last one ending at ``last_clear_end_us``), for the rules that resolve after several.
OPEN_ALERT = "resolved_us IS NULL"
alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", Key, primary_key=True, autoincrement=True),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=True),
    sa.Column("resolved_us", sa.BigInteger, nullable=True),
    sa.Column("condition", sa.String(200), nullable=True),
    sa.Column("notified_us", sa.BigInteger, nullable=True),
    sa.Column("resolved_notified_us", sa.BigInteger, nullable=True),
    sa.Column("clear_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_clear_end_us", sa.BigInteger, nullable=True),
    sa.Index("ix_alerts_time", "time_us"),
    sa.Index("uq_alerts_open_condition", "condition", unique=True,
             sqlite_where=sa.text(OPEN_ALERT), postgresql_where=sa.text(OPEN_ALERT)),
)
