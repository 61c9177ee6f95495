"""Read-only use cases for the edges. Agents are limited to their groups' tasks."""

from __future__ import annotations

from engine.exceptions import NotAuthorized, TaskNotFound
from engine.services import admin
from engine.services.views import (
    exchange_view,
    group_view,
    instance_view,
    model_view,
    provider_view,
    task_view,
    ticket_view,
)

PAGE_SIZE = 25


def authenticate_token(uow, token: str) -> dict:
    user = admin.user_for_token(uow, token)
    return {"id": user.id, "name": user.name, "role": user.role,
            "group_ids": uow.repo.group_ids_of_user(user.id)}


def _visible_task(uow, task_id: int, group_ids: set[int] | None):
    task = uow.repo.task(task_id)
    if group_ids is not None and task.group_id not in group_ids:
        raise TaskNotFound(f"task {task_id} not found")  # not "forbidden": do not confirm it exists
    return task


def task_detail(uow, task_id: int, group_ids: set[int] | None = None) -> dict:
    return task_view(_visible_task(uow, task_id, group_ids))


def provider_task(uow, task_id: int, provider: str) -> dict:
    """A task as a provider may see it: only while a group bound to that provider holds it.

    Answers like the write operations do (NotAuthorized), so all SOAP operations agree.
    """
    task = uow.repo.task(task_id)
    row = uow.repo.provider_by_name(provider)
    if row is None or task.group is None or task.group.provider_id != row.id:
        raise NotAuthorized(f"task {task_id} is not held by a group of provider {provider}")
    return task_view(task)


def task_page(uow, task_id: int, group_ids: set[int] | None = None) -> dict:
    """Everything the task page shows: fields, notes, exchanges, instances."""
    task = _visible_task(uow, task_id, group_ids)
    return {
        "task": task_view(task),
        "ticket": ticket_view(task.ticket),
        "notes": [{"kind": n.kind, "text": n.text, "author": n.author,
                   "at": n.created_at.isoformat()} for n in uow.repo.notes(task.id)],
        "exchanges": [exchange_view(e, with_payload=True)
                      for e in uow.repo.exchanges(task_id=task.id)],
        "instances": [instance_view(i) for i in uow.repo.instances_of_task(task.id)],
    }


def list_tasks(uow, group_ids: set[int] | None, status: str | None, search: str | None,
               page: int = 1) -> dict:
    rows, total = uow.repo.tasks(group_ids=group_ids, status=status or None, search=search or None,
                                 offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return {"items": [task_view(t) for t in rows], "total": total, "page": page,
            "pages": max(1, -(-total // PAGE_SIZE))}


def ticket_with_tasks(uow, ticket_id: int, group_ids: set[int] | None = None) -> dict:
    ticket = uow.repo.ticket(ticket_id)
    rows, _ = uow.repo.tasks(group_ids=group_ids, limit=1000)
    return {**ticket_view(ticket),
            "tasks": [task_view(t) for t in rows if t.ticket_id == ticket.id]}


def exchanges_of_task(uow, task_id: int) -> list[dict]:
    return [exchange_view(e) for e in uow.repo.exchanges(task_id=task_id)]


def exchange_detail(uow, exchange_id: int, group_ids: set[int] | None = None) -> dict:
    exchange = uow.repo.exchange(exchange_id)
    if group_ids is not None and exchange.task_id is not None:
        _visible_task(uow, exchange.task_id, group_ids)
    return exchange_view(exchange, with_payload=True)


def list_exchanges(uow, filters: dict, provider: str | None = None, limit: int = 200,
                   offset: int = 0) -> list[dict]:
    filters = dict(filters)
    if provider:
        row = uow.repo.provider_by_name(provider)
        filters["provider_id"] = row.id if row else -1
    return [exchange_view(e) for e in uow.repo.exchanges(filters=filters, limit=limit,
                                                         offset=offset)]


def instances_of_task(uow, task_id: int) -> list[dict]:
    uow.repo.task(task_id)
    return [instance_view(i) for i in uow.repo.instances_of_task(task_id)]


def instance_detail(uow, instance_id: int) -> dict:
    return instance_view(uow.repo.instance(instance_id))


def list_models(uow) -> list[dict]:
    return [model_view(m) for m in uow.repo.models()]


def list_providers(uow) -> list[dict]:
    public_url = uow.context.settings.public_url
    return [provider_view(p, public_url) for p in uow.repo.providers()]


def list_groups(uow) -> list[dict]:
    return [group_view(g) for g in uow.repo.groups()]


def returned_tasks(uow, task_ids: list[int]) -> set[int]:
    """Tasks the provider handed back (with or without a solution) that nobody acted on yet:
    the inbox marks them."""
    return uow.repo.returned_task_ids(task_ids)
