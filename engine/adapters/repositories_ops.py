"""Queries of the operators' tools (a mixin of `Repository`): the exchange log's total and
CSV pages, group members by name, a group's task history for dry-runs, and the waiting
instances a new process version may take over."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from engine.adapters import orm

E = orm.Exchange


def _filtered(query, filters: dict):
    for name, value in (filters or {}).items():
        if value in (None, ""):
            continue
        if name == "since":
            query = query.where(E.created_at >= value)
        elif name == "until":
            query = query.where(E.created_at <= value)
        else:
            query = query.where(getattr(E, name) == value)
    return query


class OpsRepository:
    session: object

    # -- the exchange log
    def count_exchanges(self, filters: dict) -> int:
        return self.session.scalar(_filtered(select(func.count()).select_from(E), filters)) or 0

    def exchanges_before(self, filters: dict, before_id: int | None, limit: int
                         ) -> Sequence[orm.Exchange]:
        """Newest first, below `before_id`: pages that stay put while new exchanges arrive."""
        query = _filtered(select(E), filters)
        if before_id is not None:
            query = query.where(E.id < before_id)
        return self.session.scalars(query.order_by(E.id.desc()).limit(limit)).all()

    # -- users and groups by name
    def users_named(self, names: Sequence[str]) -> dict[str, orm.User]:
        if not names:
            return {}
        rows = self.session.scalars(select(orm.User).where(orm.User.name.in_(list(names))))
        return {user.name: user for user in rows}

    # -- instances a new process version may take over
    def savepoint(self):
        """A nested transaction: `.rollback()` undoes what happened since, `.commit()` keeps it."""
        return self.session.begin_nested()

    def waiting_instances_elsewhere(self, model: orm.ProcessModel, group_id: int | None = None,
                                    limit: int = 500) -> Sequence[orm.ProcessInstance]:
        """Waiting instances of the model's process on other versions (of a group's tasks)."""
        query = select(orm.ProcessInstance).where(
            orm.ProcessInstance.process_id == model.process_id,
            orm.ProcessInstance.status == "waiting", orm.ProcessInstance.model_id != model.id)
        if group_id is not None:
            query = query.join(orm.Task, orm.Task.id == orm.ProcessInstance.task_id).where(
                orm.Task.group_id == group_id)
        return self.session.scalars(query.order_by(orm.ProcessInstance.id).limit(limit)).all()

    # -- a group's recorded history, for dry-runs
    def recent_task_ids_of_group(self, group_id: int, provider_id: int, limit: int) -> list[int]:
        """The newest tasks the group holds or its provider was sent something about."""
        sent = select(E.task_id).where(E.provider_id == provider_id, E.direction == "Out",
                                       E.task_id.is_not(None))
        held = select(orm.Task.id).where(orm.Task.group_id == group_id)
        query = (select(orm.Task.id).where(orm.Task.id.in_(sent.union(held).scalar_subquery()))
                 .order_by(orm.Task.id.desc()).limit(limit))
        return list(self.session.scalars(query))

    def history_notes(self, task_id: int, kinds: Sequence[str]) -> list[tuple]:
        """(id, kind, text, author, at) of a task's notes of these kinds, oldest first."""
        query = (select(orm.TaskNote.id, orm.TaskNote.kind, orm.TaskNote.text,
                        orm.TaskNote.author, orm.TaskNote.created_at)
                 .where(orm.TaskNote.task_id == task_id, orm.TaskNote.kind.in_(list(kinds)))
                 .order_by(orm.TaskNote.created_at, orm.TaskNote.id))
        return [tuple(row) for row in self.session.execute(query)]

    def history_exchanges(self, task_id: int) -> list[tuple]:
        """(id, request_type, direction, status, provider_id, channel, at, payload of In
        exchanges) of a task, oldest first."""
        query = (select(E.id, E.request_type, E.direction, E.status, E.provider_id, E.channel,
                        E.created_at, E.payload)
                 .where(E.task_id == task_id).order_by(E.created_at, E.id))
        return [(*row[:7], row[7] if row[2] == "In" else {}) for row in self.session.execute(query)]

    def instance_outcomes(self, task_id: int) -> list[tuple[int, str, str]]:
        """(id, event, status) of a task's process instances, oldest first."""
        query = (select(orm.ProcessInstance.id, orm.ProcessInstance.event,
                        orm.ProcessInstance.status)
                 .where(orm.ProcessInstance.task_id == task_id)
                 .order_by(orm.ProcessInstance.id))
        return [tuple(row) for row in self.session.execute(query)]

    def returned_task_ids(self, task_ids: Sequence[int]) -> set[int]:
        """Tasks whose latest exchange is the provider handing them back (Reassigned/In):
        nobody has acted on them since. One statement for a page of the inbox."""
        if not task_ids:
            return set()
        latest = (select(func.max(E.id)).where(E.task_id.in_(task_ids))
                  .group_by(E.task_id).scalar_subquery())
        return set(self.session.scalars(
            select(E.task_id).where(E.id.in_(latest), E.request_type == "Reassigned",
                                    E.direction == "In")))
