"""Append-only rows (exchanges, outbox rows, notes, nonces…), for the Repository (a mixin):
one Core INSERT each, of a statement built once per table, on the unit of work's connection;
the writer never loads them back (docs/design/write-path.md §2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.dialects import postgresql, sqlite

from engine.adapters import orm

# Built once per process: SQLAlchemy compiles each once, and the database sees the same text
# every time (PostgreSQL prepares it server-side, see db.py).
_INSERTS = {entity: insert(entity.__table__).returning(entity.__table__.c.id)
            for entity in (orm.Exchange, orm.OutboxItem, orm.TaskNote, orm.ProcessInstance,
                           orm.Task)}
_NONCE = orm.WsNonce.__table__
_INSERT_NONCE = {  # a row comes back only when the nonce is new (rowcount is not reliable)
    "postgresql": postgresql.insert(_NONCE).on_conflict_do_nothing()
    .returning(_NONCE.c.provider_id),
    "sqlite": sqlite.insert(_NONCE).on_conflict_do_nothing().returning(_NONCE.c.provider_id),
}


class RowRepository:
    session: object

    def insert_exchange(self, **values) -> int:
        """Records an exchange (CONTRACT: request type, direction, channel, status) -> its id."""
        return self._insert(orm.Exchange, values)

    def insert_outbox(self, **values) -> int:
        """Queues one outbound delivery (written with the state that caused it) -> its id."""
        return self._insert(orm.OutboxItem, values)

    def insert_note(self, **values) -> int:
        """Adds a history entry to a task -> its id."""
        return self._insert(orm.TaskNote, values)

    def insert_nonce(self, provider_id: int, nonce: str, created_at: datetime) -> bool:
        """Records a WS-Security nonce in the caller's transaction; False if it was seen before."""
        statement = _INSERT_NONCE[self.session.bind.dialect.name]
        result = self._execute(statement, {"provider_id": provider_id, "nonce": nonce,
                                           "created_at": created_at})
        return result.first() is not None

    def _insert(self, entity, values: dict) -> int:
        """One INSERT … RETURNING id, of a statement built once per table."""
        statement = _INSERTS.get(entity)
        if statement is None:
            statement = _INSERTS[entity] = insert(entity.__table__).returning(
                entity.__table__.c.id)
        return self._execute(statement, values).scalar_one()

    def _execute(self, statement, params: dict):
        """Runs a Core statement on the unit of work's connection, past the ORM's machinery.
        New ORM objects are flushed first: a row inserted here may refer to them."""
        if self.session.new:
            self.session.flush()
        return self.session.connection().execute(statement, params)

    # -- WS-Security nonces
    def purge_nonces(self, before: datetime) -> int:
        result = self.session.execute(delete(orm.WsNonce).where(orm.WsNonce.created_at < before))
        return result.rowcount
