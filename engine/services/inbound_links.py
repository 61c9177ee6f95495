"""Whether a provider may send events about a task it does not hold through a group: it may
when the task is linked to one of its tickets (a ticket it opened, or one created there from
the task page), until that link is undone."""

from __future__ import annotations

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository


def linked_to_provider(uow, provider: orm.Provider, task: orm.Task) -> bool:
    link = TwowayRepository(uow.session).provider_ticket_of_task(provider.id, task.id)
    return link is not None and link.linked
