"""Alembic environment: runs with the connection ``Database.migrate`` hands over."""

from alembic import context

from service.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through Database.migrate
    raise RuntimeError("run migrations through service.store.db.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
