"""Running BPMN for tasks: start the bound process, deliver messages, fire timers."""

from __future__ import annotations

import logging
from datetime import datetime

from engine.adapters import orm
from engine.domain.events import EVENTS, Event, TaskSnapshot, process_variables
from engine.exceptions import InvalidInput, NotFound
from engine.services.operators import OperatorContext, task_variable, ticket_variable

log = logging.getLogger(__name__)


def _spec(uow, model: orm.ProcessModel):
    return uow.context.runtime.load(model.id, model.bpmn_xml)


def _apply(instance: orm.ProcessInstance, result) -> None:
    instance.state = result.state
    instance.status = result.status
    instance.waiting_messages = ",".join(result.waiting_messages)
    instance.next_timer_at = result.next_timer_at
    instance.current_steps = list(result.current_steps)
    instance.error = result.error
    if result.status == "error":
        log.warning("process instance %s of task %s failed: %s", instance.id, instance.task_id,
                    result.error)


def variables_for(task: orm.Task, event: Event) -> dict:
    snapshot = TaskSnapshot(**task_variable(task))
    provider = task.group.provider if task.group else None
    provider_var = {"name": provider.name, "channel": provider.channel} if provider else {}
    return process_variables(event, snapshot, ticket_variable(task.ticket), provider_var)


def start_for_event(uow, task: orm.Task, event: Event) -> orm.ProcessInstance | None:
    """Starts the process the task's integrated group binds to this event, if any."""
    group = task.group
    if group is None or not group.integrated:
        return None
    process_id = group.process_for(event.kind.binding)
    if not process_id:
        return None
    model = uow.repo.latest_model(process_id)
    if model is None:
        raise InvalidInput(f"group {group.name} binds {event.kind.binding} to process "
                           f"{process_id!r}, which is not deployed")
    result = uow.context.runtime.start(_spec(uow, model), variables_for(task, event),
                                       OperatorContext(uow, task, event))
    # Inserted once, with its first state: what operators wrote commits with it.
    instance = orm.ProcessInstance(task_id=task.id, model_id=model.id, process_id=process_id,
                                   event=event.kind.name)
    _apply(instance, result)
    uow.repo.add(instance)
    return instance


def deliver_message(uow, task: orm.Task, event: Event, payload: dict) -> int:
    """Delivers the event's BPMN message to the task's waiting instances; returns how many took it."""
    message = event.kind.message
    delivered = 0
    for instance in uow.repo.instances_waiting_for(task.id, message):
        model = uow.repo.model(instance.model_id)
        result = uow.context.runtime.deliver_message(
            _spec(uow, model), instance.state, message, task.id, payload,
            OperatorContext(uow, task, event))
        if result is not None:
            _apply(instance, result)
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
        model = uow.repo.model(instance.model_id)
        result = uow.context.runtime.fire_timers(_spec(uow, model), instance.state,
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
        _spec(uow, uow.repo.model(instance.model_id)), instance.state, element_id, form_data,
        OperatorContext(uow, task, event))
    _apply(instance, result)
    uow.commit()
    return instance


apply_result = _apply  # for use cases that move an instance on elsewhere (migration)
