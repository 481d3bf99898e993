"""Monitoring: what production asked and answered, and what customers then bought.

A shared layer beside the model contract (it may import :mod:`basketry.model`, never the
training side or the application; both of those may import it). The store needs SQLAlchemy
and alembic (the ``monitor`` extra): they are imported only when a store is opened, so
``import basketry.monitoring`` (and the serving package) works without them while
monitoring is off.

- :class:`MonitorSettings`: the ``BASKETRY_MONITOR_*`` settings, read once.
- :class:`MonitorStore` (``basketry.monitoring.store``): events and orders in SQLite or
  PostgreSQL, schema migrations, retention.
- :class:`EventWriter`: the bounded queue and background writer serving offers events to.
- :class:`RecommendationEvent`, :class:`Order`, :func:`parse_orders`, :class:`OrderError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from basketry.monitoring.counters import WriterCounters
from basketry.monitoring.events import ENDPOINTS, RecommendationEvent
from basketry.monitoring.orders import Order, OrderError, parse_order, parse_orders
from basketry.monitoring.privacy import customer_key, mask_url
from basketry.monitoring.sampling import sampled
from basketry.monitoring.settings import MonitorSettings, MonitorSettingsError
from basketry.monitoring.writer import EventWriter

if TYPE_CHECKING:
    from basketry.monitoring.store import Deleted, MonitorStore, MonitorStoreError, OrdersAdded

__all__ = [
    "ENDPOINTS", "Deleted", "EventWriter", "MonitorSettings", "MonitorSettingsError",
    "MonitorStore", "MonitorStoreError", "Order", "OrderError", "OrdersAdded",
    "RecommendationEvent", "WriterCounters", "customer_key", "mask_url", "parse_order",
    "parse_orders", "sampled",
]

_STORE = ("Deleted", "MonitorStore", "MonitorStoreError", "OrdersAdded")


def __getattr__(name: str) -> Any:
    # The store's names load SQLAlchemy: only when asked for.
    if name in _STORE:
        from basketry.monitoring import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
