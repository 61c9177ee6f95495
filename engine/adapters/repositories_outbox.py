"""Queries of the outbox (a mixin of `Repository`): a worker leases several due rows with one
statement and records the outcomes of several deliveries with one statement per table
(docs/design/write-path.md §5). Plain rows only: nothing here goes through the ORM's flush."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, null, or_, select, update

from engine.adapters import orm

_OUTBOX = orm.OutboxItem.__table__
_EXCHANGES = orm.Exchange.__table__
_PROVIDERS = orm.Provider.__table__
_CONNECTIONS = orm.PsaConnection.__table__


def _due(now):
    return (_OUTBOX.c.status == "pending", _OUTBOX.c.next_attempt_at <= now,
            or_(_OUTBOX.c.locked_until.is_(None), _OUTBOX.c.locked_until < now))


def _claim(postgres: bool):
    """Compare-and-set on every row: only one worker wins a row, on every database. The
    candidates are locked on PostgreSQL (`SKIP LOCKED`: workers never wait for each other) and
    their conditions are checked again by the UPDATE itself. Taking over a row whose holder
    died counts that holder's attempt (it may have sent).

    On PostgreSQL the candidates are a `MATERIALIZED` CTE, chosen once: as `IN (subquery)` the
    planner may put them on the inner side of a nested loop and run them again for each row,
    each run skipping the rows just leased, so one claim leased the whole outbox."""
    now = bindparam("now", type_=_OUTBOX.c.next_attempt_at.type)
    candidates = (select(_OUTBOX.c.id).where(*_due(now)).order_by(_OUTBOX.c.id)
                  .limit(bindparam("limit")))
    if postgres:
        chosen = (candidates.with_for_update(skip_locked=True).cte("candidates")
                  .prefix_with("MATERIALIZED"))
        which = _OUTBOX.c.id == chosen.c.id
    else:
        which = _OUTBOX.c.id.in_(candidates.scalar_subquery())
    return (update(_OUTBOX)
            .where(which, *_due(now))
            .values(locked_until=bindparam("until", type_=_OUTBOX.c.locked_until.type),
                    locked_by=bindparam("worker"),
                    attempts=_OUTBOX.c.attempts + case((_OUTBOX.c.locked_by.is_not(None), 1),
                                                       else_=0))
            .returning(_OUTBOX.c.id))


_CLAIM = {"postgresql": _claim(True), "sqlite": _claim(False)}
_CLAIMED = (select(_OUTBOX.c.id, _OUTBOX.c.exchange_id, _OUTBOX.c.channel, _OUTBOX.c.attempts,
                   _OUTBOX.c.message, _EXCHANGES.c.task_id,
                   _CONNECTIONS.c.updated_at.label("connection_stamp"))
            .select_from(_OUTBOX.outerjoin(_EXCHANGES, _EXCHANGES.c.id == _OUTBOX.c.exchange_id)
                         .outerjoin(_CONNECTIONS,
                                    _CONNECTIONS.c.provider_id == _EXCHANGES.c.provider_id))
            .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
            .order_by(_OUTBOX.c.id))

_HELD = (select(_OUTBOX.c.id, _OUTBOX.c.attempts, _OUTBOX.c.next_attempt_at,
                _OUTBOX.c.exchange_id, _EXCHANGES.c.task_id, _EXCHANGES.c.channel,
                _EXCHANGES.c.result, _PROVIDERS.c.name.label("provider"))
         .select_from(_OUTBOX.outerjoin(_EXCHANGES, _EXCHANGES.c.id == _OUTBOX.c.exchange_id)
                      .outerjoin(_PROVIDERS, _PROVIDERS.c.id == _EXCHANGES.c.provider_id))
         .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
                _OUTBOX.c.locked_by == bindparam("worker"), _OUTBOX.c.status == "pending"))
_HELD_FOR_UPDATE = _HELD.with_for_update(of=_OUTBOX)

_FINISH_OUTBOX = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("b_id"))
                  .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"),
                          last_error=bindparam("b_last_error"),
                          next_attempt_at=bindparam("b_next_attempt_at",
                                                    type_=_OUTBOX.c.next_attempt_at.type),
                          locked_until=null(), locked_by=null()))
_FINISH_EXCHANGE = (update(_EXCHANGES).where(_EXCHANGES.c.id == bindparam("b_id"))
                    .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"),
                            error=bindparam("b_error"),
                            result=bindparam("b_result", type_=_EXCHANGES.c.result.type),
                            updated_at=bindparam("b_updated_at",
                                                 type_=_EXCHANGES.c.updated_at.type)))


class OutboxRepository:
    session: object

    def claim_outbox(self, worker: str, now: datetime, until: datetime, limit: int
                     ) -> list[dict]:
        """Leases up to `limit` due rows to `worker` with one statement and reads them with a
        second -> plain rows, oldest first: id, exchange_id, channel, attempts (after the
        lease), message, task_id, connection_stamp."""
        statement = _CLAIM[self.session.bind.dialect.name]
        ids = self._execute(statement, {"now": now, "until": until, "worker": worker,
                                        "limit": limit}).scalars().all()
        if not ids:
            return []
        return [dict(row) for row in self._execute(_CLAIMED, {"ids": ids}).mappings()]

    def held_outbox(self, worker: str, ids: Collection[int]) -> dict[int, dict]:
        """The rows of `ids` `worker` still holds (a row taken over after its lease ran out is
        left out), each with its exchange's task, channel, result and provider name; locked
        until commit on PostgreSQL, so that no one takes them over meanwhile."""
        statement = _HELD_FOR_UPDATE if self.session.bind.dialect.name == "postgresql" else _HELD
        rows = self._execute(statement, {"ids": list(ids), "worker": worker}).mappings()
        return {row["id"]: dict(row) for row in rows}

    def finish_outbox(self, rows: Sequence[dict]) -> None:
        """Stores outcomes: {b_id, b_status, b_attempts, b_last_error, b_next_attempt_at} each; the
        lease is given up. One statement for all of them."""
        if rows:
            self.session.connection().execute(_FINISH_OUTBOX, list(rows))

    def finish_exchanges(self, rows: Sequence[dict]) -> None:
        """{b_id, b_status, b_attempts, b_error, b_result, b_updated_at} each, one statement."""
        if rows:
            self.session.connection().execute(_FINISH_EXCHANGE, list(rows))
