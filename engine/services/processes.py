"""Running BPMN for tasks: start the bound process, deliver messages, fire timers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from engine.adapters import orm
from engine.domain.events import EVENTS, Event, TaskSnapshot, process_variables
from engine.exceptions import InvalidInput, NotFound
from engine.services.operators import OperatorContext, task_variable, ticket_variable

log = logging.getLogger(__name__)


def _spec(uow, model_id: int):
    """The parsed spec of a model version: versions never change, so the runtime caches it
    by id and the BPMN is read only the first time this process meets the version."""
    runtime = uow.context.runtime
    return runtime.cached(model_id) or runtime.load(model_id, uow.repo.model_xml(model_id))


def _columns(result) -> dict:
    """An instance's stored columns after a run."""
    return {"state": result.state, "status": result.status,
            "waiting_messages": ",".join(result.waiting_messages),
            "next_timer_at": result.next_timer_at, "current_steps": list(result.current_steps),
            "error": result.error}


def _log_failure(instance_id, task_id, result) -> None:
    if result.status == "error":
        log.warning("process instance %s of task %s failed: %s", instance_id, task_id,
                    result.error)


def _apply(instance: orm.ProcessInstance, result) -> None:
    for name, value in _columns(result).items():
        setattr(instance, name, value)
    _log_failure(instance.id, instance.task_id, result)


def variables_for(task: orm.Task, event: Event) -> dict:
    snapshot = TaskSnapshot(**task_variable(task))
    provider = task.group.provider if task.group else None
    provider_var = {"name": provider.name, "channel": provider.channel} if provider else {}
    return process_variables(event, snapshot, ticket_variable(task.ticket), provider_var)


def start_for_event(uow, task: orm.Task, event: Event) -> int | None:
    """Starts the process the task's integrated group binds to this event, if any; returns
    the new instance's id."""
    group = task.group
    if group is None or not group.integrated:
        return None
    binding = group.binding_for(event.kind.binding)
    if binding is None:
        return None
    model_id = binding.latest_model_id  # read with the binding: see orm.ProcessBinding
    if model_id is None:
        raise InvalidInput(f"group {group.name} binds {event.kind.binding} to process "
                           f"{binding.process_id!r}, which is not deployed")
    result = uow.context.runtime.start(_spec(uow, model_id), variables_for(task, event),
                                       OperatorContext(uow, task, event))
    # Inserted once, with its first state: what operators wrote commits with it.
    instance_id = uow.repo.insert_instance(task_id=task.id, model_id=model_id,
                                           process_id=binding.process_id, event=event.kind.name,
                                           **_columns(result))
    _log_failure(instance_id, task.id, result)
    return instance_id


def deliver_message(uow, task: orm.Task, event: Event, payload: dict,
                    waiting: Sequence | None = None) -> int:
    """Delivers the event's BPMN message to the task's waiting instances (as read by
    `repo.instances_waiting_for`, unless the caller has them); returns how many took it."""
    message = event.kind.message
    if waiting is None:
        waiting = uow.repo.instances_waiting_for(task.id, message)
    delivered = 0
    for instance in waiting:
        result = uow.context.runtime.deliver_message(
            _spec(uow, instance.model_id), instance.state, message, task.id, payload,
            OperatorContext(uow, task, event))
        if result is not None:
            uow.repo.update_instance(instance.id, instance.version, **_columns(result))
            _log_failure(instance.id, task.id, result)
            delivered += 1
    return delivered


def fire_due_timers(uow, now: datetime, limit: int = 50) -> int:
    """Fires due timers of waiting instances. Commits once; returns the number handled."""
    handled = 0
    for instance in uow.repo.due_timer_instances(now, limit):
        task = uow.repo.task_unless_locked(instance.task_id)
        if task is None:  # a writer holds the task: this timer fires on the next pass
            continue
        event = Event(kind=EVENTS.get(instance.event, EVENTS["new_assignment"]), channel="timer",
                      actor="timer", at=now)
        result = uow.context.runtime.fire_timers(_spec(uow, instance.model_id), instance.state,
                                                 OperatorContext(uow, task, event), now=now)
        _apply(instance, result)
        handled += 1
    uow.commit()
    return handled


def complete_user_task(uow, instance_id: int, element_id: str, form_data: dict,
                       actor: str) -> orm.ProcessInstance:
    """Completes a READY user task of an instance with validated form data."""
    instance = uow.repo.instance(instance_id)
    if not any(step.get("id") == element_id and step.get("type") == "userTask"
               for step in instance.current_steps or []):
        raise NotFound(f"instance {instance_id} has no open user task {element_id!r}")
    task = uow.repo.task_for_update(instance.task_id)
    event = Event(kind=EVENTS[instance.event], channel="web", actor=actor)
    result = uow.context.runtime.complete_user_task(
        _spec(uow, instance.model_id), instance.state, element_id, form_data,
        OperatorContext(uow, task, event))
    _apply(instance, result)
    uow.commit()
    return instance


apply_result = _apply  # for use cases that move an instance on elsewhere (migration)
