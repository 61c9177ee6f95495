"""*Create/Update ticket in <provider>* on the task page (Continuum's "Create/Update Ticket"
window): an agent sends a note to a provider about a task whatever group holds it. A task
already linked to one of the provider's tickets gets an Update; otherwise a Submit Request
creates the ticket there. Both go through the provider's channel and the outbox."""

from __future__ import annotations

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.domain.events import RequestType
from engine.exceptions import InvalidInput, TaskClosed
from engine.services import queries
from engine.services.operators import enqueue_outbound

PLACEHOLDER = "task:"  # a link whose ticket id is not known yet (its creation is on its way)


def visible_task(uow, task_id: int, group_ids: set[int] | None) -> dict:
    return queries.task_detail(uow, task_id, group_ids)


def _linked(uow, provider: orm.Provider, task: orm.Task) -> orm.ProviderTicket | None:
    link = TwowayRepository(uow.session).provider_ticket_of_task(provider.id, task.id)
    return link if link is not None and link.linked else None


def ticket_exists(uow, provider: orm.Provider, task: orm.Task) -> bool:
    """Whether the task has a ticket at the provider (or one is being created)."""
    held = task.group is not None and task.group.provider_id == provider.id
    return _linked(uow, provider, task) is not None or (held and bool(task.external_reference))


def send_to_provider(uow, task_id: int, provider_name: str, note: str, actor: str) -> dict:
    """Sends `note` to the provider as an Update of the task's ticket there, or as a Submit
    Request that creates it -> the queued exchange."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("note must not be empty", field="note")
    task = uow.repo.task_for_update(task_id)
    if task.status == "closed":
        raise TaskClosed(f"task {task_id} is closed")
    provider = uow.repo.provider_by_name(provider_name)
    if provider is None:
        raise InvalidInput(f"provider {provider_name!r} not found", field="provider")
    if ticket_exists(uow, provider, task):
        request_type = RequestType.UPDATE
    else:
        request_type = RequestType.SUBMIT_REQUEST
        # the link lets the provider's acknowledgement (its ticket id) reach this task
        uow.repo.add(orm.ProviderTicket(provider_id=provider.id,
                                        external_id=f"{PLACEHOLDER}{task.id}", task_id=task.id,
                                        origin="ours", linked=True, closed=False,
                                        last_note_id=0))
    uow.repo.insert_note(task_id=task.id, kind="update",
                         text=f"To {provider.name} ({request_type}): {note}", author=actor)
    task.updated_at = orm.utcnow()
    uow.repo.flush()
    exchange_id = enqueue_outbound(uow, task, provider, str(request_type), note)
    uow.commit()
    return {"exchange_id": exchange_id, "request_type": str(request_type),
            "provider": provider.name, "task_id": task.id}


def provider_choices(uow, task_id: int) -> list[dict]:
    """The providers the task page offers: *Update* where the task has a ticket, *Create*
    where the provider speaks a PSA's API."""
    task = uow.repo.task(task_id)
    choices = []
    for provider in uow.repo.providers():
        exists = ticket_exists(uow, provider, task)
        if exists or provider.channel == "connectwise":
            choices.append({"name": provider.name,
                            "action": "Update" if exists else "Create"})
    return choices


def close_at_providers(uow, task: orm.Task) -> list[int]:
    """Closing a task closes the tickets linked to it at providers that do not hold it through
    its group (a ticket the provider opened, one created from the task page): Closed/Out
    through each provider's channel. The group's own provider gets its closure process."""
    queued = []
    for link in TwowayRepository(uow.session).tickets_of_task(task.id):
        if not link.linked or link.closed:
            continue
        group = task.group
        if group is not None and group.integrated and group.provider_id == link.provider_id:
            continue
        provider = uow.repo.provider(link.provider_id)
        queued.append(enqueue_outbound(uow, task, provider, str(RequestType.CLOSED),
                                       task.solution or ""))
    return queued
