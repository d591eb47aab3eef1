"""Alembic environment: runs on the connection handed in by rackpool.cloud.db.engine."""

from alembic import context

from rackpool.cloud.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through rackpool's upgrade()
    raise RuntimeError("run migrations through rackpool.cloud.db.engine.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
