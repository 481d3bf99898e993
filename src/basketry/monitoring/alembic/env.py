"""Alembic's environment for the monitoring store: run on the connection the store gives.

``basketry.monitoring.migrations`` calls alembic with ``config.attributes["connection"]``
set (under the store's migration lock), so this module never opens a connection itself.
"""

from __future__ import annotations

from alembic import context

from basketry.monitoring.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the store runs these migrations
    raise RuntimeError("run the monitoring migrations with MonitorStore(url).migrate()")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
