"""Alembic environment: the engine comes from engine.adapters.migrate, never from a file."""

from alembic import context

from engine.adapters.orm import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
