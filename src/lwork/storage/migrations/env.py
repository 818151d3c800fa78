"""Alembic environment: always run through ``lwork.storage.engine.migrate`` with a connection."""

from __future__ import annotations

from alembic import context

from lwork.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
