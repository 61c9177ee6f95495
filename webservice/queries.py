"""Read use cases of the SOAP edge that the engine's query services do not offer as such."""

from __future__ import annotations

from engine.exceptions import NotAuthorized
from engine.services.views import task_view


def provider_task(uow, task_id: int, provider: str) -> dict:
    """A task as a provider may see it: only while a group bound to that provider holds it.

    Answers like the write operations do (NotAuthorized), so all four operations agree.
    """
    task = uow.repo.task(task_id)
    row = uow.repo.provider_by_name(provider)
    if row is None or task.group is None or task.group.provider_id != row.id:
        raise NotAuthorized(f"task {task_id} is not held by a group of provider {provider}")
    return task_view(task)
