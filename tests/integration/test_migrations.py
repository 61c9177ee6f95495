"""The Alembic chain creates exactly the tables the ORM describes (on SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.adapters.orm import Base


def test_migrations_match_the_orm(any_core):
    with any_core.db.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
