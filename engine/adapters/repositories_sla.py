"""The SLA queries of the Repository (a mixin: `Repository` inherits it, so services keep
using `uow.repo`). Exchanges and notes are read as plain tuples: reports never load ORM rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from engine.adapters import orm

E = orm.Exchange
STOPPING_ANSWERS = ("Acknowledgement", "Reassigned")


class SlaRepository:
    session: object

    def sla_targets(self, provider_id: int | None = None) -> Sequence[orm.SlaTarget]:
        query = select(orm.SlaTarget).order_by(orm.SlaTarget.provider_id, orm.SlaTarget.metric,
                                               orm.SlaTarget.priority)
        if provider_id is not None:
            query = query.where(orm.SlaTarget.provider_id == provider_id)
        return self.session.scalars(query).all()

    def replace_sla_targets(self, provider_id: int, targets: list[dict]) -> None:
        self.session.execute(delete(orm.SlaTarget).where(orm.SlaTarget.provider_id == provider_id))
        for values in targets:
            self.session.add(orm.SlaTarget(provider_id=provider_id, **values))

    def sla_clock_starts(self, since: datetime, provider_id: int | None = None,
                         open_only: bool = False) -> list[tuple]:
        """(task_id, provider_id, priority, started_at, task status, provider holding the
        task) of every clock that started since `since`: a task's first Submit Request/Out to
        a provider. `open_only`: of open tasks only (what the breach job watches)."""
        inner = select(E.task_id, E.provider_id, func.min(E.created_at).label("started_at")).where(
            E.direction == "Out", E.request_type == "Submit Request", E.task_id.is_not(None),
            E.provider_id.is_not(None))
        if open_only:
            inner = inner.where(E.task_id.in_(select(orm.Task.id).where(orm.Task.status == "open")))
        first = inner.group_by(E.task_id, E.provider_id).subquery()
        query = (select(first.c.task_id, first.c.provider_id, orm.Task.priority,
                        first.c.started_at, orm.Task.status, orm.Group.provider_id)
                 .join(orm.Task, orm.Task.id == first.c.task_id)
                 .outerjoin(orm.Group, orm.Group.id == orm.Task.group_id)
                 .where(first.c.started_at >= since))
        if provider_id is not None:
            query = query.where(first.c.provider_id == provider_id)
        return [tuple(row) for row in self.session.execute(query)]

    def sla_answers(self, since: datetime, task_ids: Sequence[int] | None = None) -> list[tuple]:
        """(task_id, provider_id, request_type, at, payload) of provider answers since then
        (of these tasks only, when given)."""
        query = select(E.task_id, E.provider_id, E.request_type, E.created_at, E.payload).where(
            E.direction == "In", E.status == "delivered", E.request_type.in_(STOPPING_ANSWERS),
            E.task_id.is_not(None), E.created_at >= since)
        if task_ids is not None:
            query = query.where(E.task_id.in_(list(task_ids)))
        return [tuple(row) for row in self.session.execute(query)]

    def sla_closures(self, since: datetime, task_ids: Sequence[int] | None = None
                     ) -> list[tuple]:
        """(task_id, provider_id or None, at) of closures: Closed/Out, and closure notes."""
        sent = select(E.task_id, E.provider_id, E.created_at).where(
            E.direction == "Out", E.request_type == "Closed", E.task_id.is_not(None),
            E.created_at >= since)
        notes = select(orm.TaskNote.task_id, orm.TaskNote.created_at).where(
            orm.TaskNote.kind == "closure", orm.TaskNote.created_at >= since)
        if task_ids is not None:
            sent = sent.where(E.task_id.in_(list(task_ids)))
            notes = notes.where(orm.TaskNote.task_id.in_(list(task_ids)))
        return ([tuple(row) for row in self.session.execute(sent)]
                + [(task_id, None, at) for task_id, at in self.session.execute(notes)])

    def sla_breach_keys(self, task_ids: Sequence[int]) -> set[tuple[int, int, str]]:
        if not task_ids:
            return set()
        query = select(orm.SlaBreach.task_id, orm.SlaBreach.provider_id, orm.SlaBreach.metric
                       ).where(orm.SlaBreach.task_id.in_(list(task_ids)))
        return {tuple(row) for row in self.session.execute(query)}

    def insert_sla_breach(self, **values) -> int:
        """Records a missed target (once per task, provider and metric) -> its id."""
        return self._insert(orm.SlaBreach, values)

    def sla_breaches(self, provider_id: int | None = None, limit: int = 100
                     ) -> Sequence[orm.SlaBreach]:
        query = select(orm.SlaBreach).order_by(orm.SlaBreach.id.desc()).limit(limit)
        if provider_id is not None:
            query = query.where(orm.SlaBreach.provider_id == provider_id)
        return self.session.scalars(query).all()

    def sla_breaches_of_task(self, task_id: int) -> Sequence[orm.SlaBreach]:
        return self.session.scalars(select(orm.SlaBreach).where(
            orm.SlaBreach.task_id == task_id).order_by(orm.SlaBreach.id)).all()
