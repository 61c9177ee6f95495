"""Moving waiting process instances to another version of their process, explicitly: a
preview (which may move, which are skipped and why), then the migration itself.

Groups bind a process by id and new instances always start on its latest version; instances
already waiting stay on the version they started with until they are migrated here.
"""

from __future__ import annotations

from engine.adapters import bpmn_migration, orm
from engine.domain.events import EVENTS, Event
from engine.exceptions import NotFound
from engine.services.operators import OperatorContext
from engine.services.processes import apply_result


def _group_id(uow, group: str | None) -> int | None:
    if not group:
        return None
    row = uow.repo.group_by_name(group)
    if row is None:
        raise NotFound(f"group {group!r} not found")
    return row.id


def _spec(uow, model: orm.ProcessModel):
    return uow.context.runtime.load(model.id, model.bpmn_xml)


def _entry(instance: orm.ProcessInstance, versions: dict[int, int], waiting_at: list[str],
           reason: str | None = None) -> dict:
    entry = {"instance_id": instance.id, "task_id": instance.task_id,
             "from_version": versions.get(instance.model_id), "waiting_at": waiting_at}
    return {**entry, "reason": reason} if reason else entry


def _candidates(uow, model: orm.ProcessModel, group: str | None):
    instances = uow.repo.waiting_instances_elsewhere(model, _group_id(uow, group))
    versions = {m.id: m.version for m in uow.repo.models() if m.process_id == model.process_id}
    return instances, versions


def _plan(uow, model, instance):
    return bpmn_migration.plan(uow.context.runtime, _spec(uow, uow.repo.model(instance.model_id)),
                               _spec(uow, model), instance.state)


def _header(model: orm.ProcessModel, group: str | None) -> dict:
    return {"model_id": model.id, "process_id": model.process_id, "version": model.version,
            "group": group}


def preview(uow, model_id: int, group: str | None = None) -> dict:
    """Waiting instances of other versions that may move to this one, and those that may not."""
    model = uow.repo.model(model_id)
    instances, versions = _candidates(uow, model, group)
    migratable, skipped = [], []
    for instance in instances:
        plan = _plan(uow, model, instance)
        target = skipped if plan.problem else migratable
        target.append(_entry(instance, versions, plan.waiting_at, plan.problem))
    return {**_header(model, group), "migratable": migratable, "skipped": skipped}


def _move(uow, model, instance, versions: dict, actor: str) -> str | None:
    """Moves one instance; returns why it could not, or None (then nothing of it is kept)."""
    task = uow.repo.task_for_update(instance.task_id)
    event = Event(EVENTS[instance.event], channel="migration", actor=actor)
    savepoint = uow.repo.savepoint()  # what operators did on a failed move is undone
    result = bpmn_migration.migrate(
        uow.context.runtime, _spec(uow, uow.repo.model(instance.model_id)), _spec(uow, model),
        instance.state, OperatorContext(uow, task, event))
    if isinstance(result, str) or result.status == "error":
        savepoint.rollback()
        return result if isinstance(result, str) else \
            f"it would fail on the new version: {result.error}"
    savepoint.commit()
    old_version = versions.get(instance.model_id)
    instance.model_id = model.id
    apply_result(instance, result)
    uow.repo.insert_note(task_id=task.id, kind="migration", author=actor,
                         text=f"Process instance #{instance.id} ({model.process_id}) moved from "
                              f"version {old_version} to version {model.version}")
    return None


def migrate(uow, model_id: int, group: str | None = None, instance_ids: list[int] | None = None,
            actor: str = "system") -> dict:
    """Moves the waiting instances of other versions (all, or those listed) to this version.
    One that cannot move keeps its version and is listed as skipped, with the reason."""
    model = uow.repo.model(model_id)
    instances, versions = _candidates(uow, model, group)
    wanted = set(instance_ids) if instance_ids is not None else None
    migrated, skipped = [], []
    for instance in instances:
        if wanted is not None and instance.id not in wanted:
            continue
        plan = _plan(uow, model, instance)
        entry = _entry(instance, versions, plan.waiting_at)  # before the move changes it
        reason = plan.problem or _move(uow, model, instance, versions, actor)
        if reason:
            skipped.append({**entry, "reason": reason})
        else:
            migrated.append(entry)
    for missing in sorted((wanted or set()) - {i.id for i in instances}):
        skipped.append({"instance_id": missing, "reason": "not a waiting instance of another "
                        "version of this process" + (f" for group {group}" if group else "")})
    uow.commit()
    return {**_header(model, group), "migrated": migrated, "skipped": skipped}
