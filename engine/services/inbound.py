"""Inbound provider events (SOAP or e-mail): apply to the task, record, deliver, start.

Each is idempotent: by `request_id` (per provider), and an acknowledgement repeating the
reference the task already has changes nothing. An authenticated edge (SOAP) passes the
WS-Security nonce and the credentials it checked: the nonce is stored in the event's own
transaction, and the credentials are confirmed against the provider row read with the task.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.adapters import orm
from engine.adapters.task_rows import TaskRow
from engine.domain.events import (
    EXTERNAL_ACKNOWLEDGEMENT,
    EXTERNAL_REASSIGNMENT,
    EXTERNAL_UPDATE,
    Direction,
    Event,
    EventKind,
    ExchangeStatus,
)
from engine.exceptions import (
    InvalidInput,
    NotAuthenticated,
    NotAuthorized,
    ReferenceMismatch,
    TaskClosed,
)
from engine.services import processes
from engine.services.inbound_links import linked_to_provider

MAX_TEXT = 100_000


@dataclass(frozen=True)
class Inbound:
    """Who sent an inbound event and how: the edge fills this from its authentication."""

    provider: str | None = None  # None: trusted internal caller (tests, CLI)
    channel: str = "soap"
    request_id: str | None = None
    nonce: str | None = None  # WS-Security nonce, recorded with the event (a replay is refused)
    credential: str | None = None  # the provider's password fingerprint the edge checked against


def _result(task: TaskRow, kind: EventKind, status: str) -> dict:
    return {"taskId": task.id, "externalReference": task.external_reference or "",
            "requestType": str(kind.request_type), "status": status}


def _confirm_login(uow, provider: orm.Provider, source: Inbound) -> None:
    """The edge checked the password against credentials it may have cached: they must still
    be the provider's (read with the task, so always current). The nonce joins the event."""
    if source.credential is not None and source.credential != provider.password_hash:
        raise NotAuthenticated("the provider's credentials have changed")
    if source.nonce is not None and not uow.repo.insert_nonce(provider.id, source.nonce,
                                                               uow.context.clock.now()):
        raise NotAuthenticated("the WS-Security nonce was used before")


def _provider_of(uow, task: TaskRow, source: Inbound) -> orm.Provider:
    """The calling provider: the provider of the task's group (read with the task), else one
    the task is linked to (a ticket it opened; looked up only then)."""
    holder = task.group.provider if task.group is not None else None
    if holder is not None and holder.name == source.provider:
        return holder
    provider = uow.repo.provider_by_name(source.provider)
    if provider is None or not linked_to_provider(uow, provider, task):
        # Same answer as for a task held by nobody: do not reveal other providers' tasks.
        raise NotAuthorized(f"task {task.id} is not held by a group of provider "
                            f"{source.provider}")
    return provider


def _checked_task(uow, task_id: int, source: Inbound) -> tuple[TaskRow, orm.Provider | None]:
    # locked, with its group, provider and bindings, and the answer the group's provider was
    # given for this request id if it is a repeat: one statement, plain rows
    task = uow.repo.task_row_for_update(task_id, source.request_id)
    provider = None
    if source.provider is not None:
        provider = _provider_of(uow, task, source)
        _confirm_login(uow, provider, source)
    if task.status == "closed":
        raise TaskClosed(f"task {task_id} is closed")
    return task, provider


def _answer_unchanged(uow, source: Inbound, answer: dict) -> dict:
    """An answer that changes nothing; the nonce is kept all the same."""
    if source.nonce is not None:
        uow.commit()
    return answer


def _duplicate(uow, task: TaskRow, provider: orm.Provider | None, source: Inbound
               ) -> dict | None:
    if provider is None or not source.request_id:
        return None
    if task.group is not None and provider.id == task.group.provider_id:
        previous = task.earlier_answer  # read with the task
    else:
        previous = uow.repo.exchange_result_by_key(provider.id, source.request_id)
    if previous is None:
        return None
    return _answer_unchanged(uow, source, {**previous, "status": "duplicate"})


def _begin(uow, task_id: int, source: Inbound):
    """The task and provider of an inbound event, and the first answer if it is a repeat."""
    task, provider = _checked_task(uow, task_id, source)
    return task, provider, _duplicate(uow, task, provider, source)


def _check_reference(task: TaskRow, reference: str | None) -> None:
    if reference and task.external_reference and reference != task.external_reference:
        raise ReferenceMismatch(f"task {task.id} has external reference "
                                f"{task.external_reference!r}, not {reference!r}")


def _adopt_reference(task: TaskRow, reference: str | None) -> None:
    """An update or reassignment may name the reference: it must match, or set a missing one."""
    _check_reference(task, reference)
    task.external_reference = task.external_reference or reference or None


def _text(value: str | None, name: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters", field=name)
    return value


def _record_and_run(uow, task: TaskRow, provider: orm.Provider | None, source: Inbound,
                    kind: EventKind, payload: dict, message: str, waiting=None) -> dict:
    result = _result(task, kind, "accepted")
    task.updated_at = orm.utcnow()  # the task's one UPDATE (and version check) is at commit
    uow.repo.insert_exchange(
        task_id=task.id, provider_id=provider.id if provider else None,
        request_type=str(kind.request_type), direction=str(Direction.IN), channel=source.channel,
        status=str(ExchangeStatus.DELIVERED), attempts=1, payload=payload, result=result,
        idempotency_key=source.request_id)
    event = Event(kind, message=message, channel=source.channel,
                  actor=provider.name if provider else "system")
    processes.deliver_message(uow, task, event, {"task_id": task.id, **payload}, waiting)
    processes.start_for_event(uow, task, event)
    uow.commit()
    return result


def acknowledge_external(uow, task_id: int, reference: str, source: Inbound = Inbound()) -> dict:
    """The provider gives its ticket number: sets the task's external reference."""
    reference = _text(reference, "externalReference")
    if not reference:
        raise InvalidInput("externalReference must not be empty", field="externalReference")
    task, provider, duplicate = _begin(uow, task_id, source)
    if duplicate is not None:
        return duplicate
    waiting = uow.repo.instances_waiting_for(task.id, EXTERNAL_ACKNOWLEDGEMENT.message)
    if task.external_reference == reference and not waiting:
        return _answer_unchanged(uow, source, _result(task, EXTERNAL_ACKNOWLEDGEMENT, "duplicate"))
    if not waiting:
        _check_reference(task, reference)
    task.external_reference = reference
    payload = {"external_reference": reference}
    return _record_and_run(uow, task, provider, source, EXTERNAL_ACKNOWLEDGEMENT, payload,
                           reference, waiting)


def update_external(uow, task_id: int, message: str, reference: str | None = None,
                    source: Inbound = Inbound()) -> dict:
    """The provider sends update text about the task."""
    message = _text(message, "message")
    if not message:
        raise InvalidInput("message must not be empty", field="message")
    task, provider, duplicate = _begin(uow, task_id, source)
    if duplicate is not None:
        return duplicate
    _adopt_reference(task, reference)
    uow.repo.insert_note(task_id=task.id, kind="external_update", text=message,
                         author=provider.name if provider else "provider")
    payload = {"message": message, "external_reference": reference}
    return _record_and_run(uow, task, provider, source, EXTERNAL_UPDATE, payload, message)


def reassign_external(uow, task_id: int, solution: str | None = None, message: str | None = None,
                      reference: str | None = None, source: Inbound = Inbound()) -> dict:
    """The provider hands the task back, with or without a solution."""
    solution, message = _text(solution, "solution"), _text(message, "message")
    task, provider, duplicate = _begin(uow, task_id, source)
    if duplicate is not None:
        return duplicate
    _adopt_reference(task, reference)
    if solution:
        task.solution = solution
        task.solution_pending = True
    text = "\n\n".join(part for part in (message, f"Solution: {solution}" if solution else "") if part)
    uow.repo.insert_note(task_id=task.id, kind="external_reassignment",
                         text=text or "Returned by the provider",
                         author=provider.name if provider else "provider")
    payload = {"solution": solution, "message": message, "external_reference": reference}
    return _record_and_run(uow, task, provider, source, EXTERNAL_REASSIGNMENT, payload,
                           message or solution)
