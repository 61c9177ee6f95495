"""Process models and instances, for the Repository (a mixin: services keep using
`uow.repo`). On the hot paths instances are read as plain rows and written with one Core
statement each, built once per process; `update_instance` checks the version as the ORM does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.orm.exc import StaleDataError

from engine.adapters import orm
from engine.exceptions import NotFound

_INSTANCE = orm.ProcessInstance.__table__
_WAITING_INSTANCES = (
    select(_INSTANCE.c.id, _INSTANCE.c.model_id, _INSTANCE.c.state, _INSTANCE.c.version)
    .where(_INSTANCE.c.task_id == bindparam("task_id"), _INSTANCE.c.status == "waiting",
           _INSTANCE.c.waiting_messages.contains(bindparam("message")))
    .order_by(_INSTANCE.c.id))
_UPDATE_INSTANCE = (
    update(_INSTANCE)
    .where(_INSTANCE.c.id == bindparam("instance_id"), _INSTANCE.c.version == bindparam("seen"))
    .values(version=bindparam("seen") + 1))
_MODEL_XML = select(orm.ProcessModel.__table__.c.bpmn_xml).where(
    orm.ProcessModel.__table__.c.id == bindparam("model_id"))


class ProcessRepository:
    session: object

    def latest_model(self, process_id: str) -> orm.ProcessModel | None:
        return self.session.scalar(
            select(orm.ProcessModel).where(orm.ProcessModel.process_id == process_id)
            .order_by(orm.ProcessModel.version.desc()).limit(1))

    def model(self, model_id: int) -> orm.ProcessModel:
        model = self.session.get(orm.ProcessModel, model_id)
        if model is None:
            raise NotFound(f"process model {model_id} not found")
        return model

    def models(self) -> Sequence[orm.ProcessModel]:
        return self.session.scalars(select(orm.ProcessModel).order_by(
            orm.ProcessModel.process_id, orm.ProcessModel.version.desc())).all()

    def instance(self, instance_id: int) -> orm.ProcessInstance:
        instance = self.session.get(orm.ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"process instance {instance_id} not found")
        return instance

    def instances_of_task(self, task_id: int) -> Sequence[orm.ProcessInstance]:
        return self.session.scalars(select(orm.ProcessInstance).where(
            orm.ProcessInstance.task_id == task_id).order_by(orm.ProcessInstance.id)).all()

    def instances_waiting_for(self, task_id: int, message: str) -> Sequence[Row]:
        """(id, model_id, state, version) of the task's instances waiting for `message`."""
        return self._execute(_WAITING_INSTANCES, {"task_id": task_id, "message": message}).all()

    def model_xml(self, model_id: int) -> bytes:
        """A model version's BPMN (versions never change: callers may cache it by id)."""
        xml = self._execute(_MODEL_XML, {"model_id": model_id}).scalar()
        if xml is None:
            raise NotFound(f"process model {model_id} not found")
        return xml

    def insert_instance(self, **values) -> int:
        """Stores a new process instance with its first state -> its id."""
        return self._insert(orm.ProcessInstance, values)

    def update_instance(self, instance_id: int, seen_version: int, **values) -> None:
        """Stores an instance's new state, if nobody changed it since `seen_version` was read
        (optimistic locking, as the ORM does for mapped rows: a lost race is retried)."""
        values.setdefault("updated_at", orm.utcnow())
        # the statement's SET clause takes the columns named by `values`
        result = self._execute(_UPDATE_INSTANCE,
                               {"instance_id": instance_id, "seen": seen_version, **values})
        if result.rowcount != 1:
            raise StaleDataError(f"process instance {instance_id} was changed concurrently")

    def completed_instances_before(self, before: datetime, limit: int) -> list[dict]:
        """Instances completed before `before`, oldest first, as plain rows (for archiving)."""
        rows = self._execute(
            select(_INSTANCE).where(_INSTANCE.c.status == "completed",
                                    _INSTANCE.c.updated_at < before)
            .order_by(_INSTANCE.c.updated_at, _INSTANCE.c.id).limit(limit), {})
        return [dict(row._mapping) for row in rows]

    def delete_instances(self, instance_ids: list[int]) -> int:
        result = self._execute(delete(_INSTANCE).where(_INSTANCE.c.id.in_(instance_ids)), {})
        return result.rowcount

    def due_timer_instances(self, now: datetime, limit: int) -> Sequence[orm.ProcessInstance]:
        query = (select(orm.ProcessInstance)
                 .where(orm.ProcessInstance.status == "waiting",
                        orm.ProcessInstance.next_timer_at <= now)
                 .order_by(orm.ProcessInstance.next_timer_at).limit(limit))
        if self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return self.session.scalars(query).all()
