"""Agent-side use cases on tickets and tasks; each starts the group's bound process."""

from __future__ import annotations

from engine.adapters import orm
from engine.domain.events import (
    CLOSURE,
    NEW_ASSIGNMENT,
    RESOLUTION_REJECTION,
    UPDATE_MESSAGE,
    Event,
)
from engine.exceptions import Conflict, InvalidInput, NotFound, TaskClosed
from engine.services import customers, processes, task_links
from engine.services.views import task_view, ticket_view


def _group(uow, name: str) -> orm.Group:
    group = uow.repo.group_by_name(name)
    if group is None:
        raise NotFound(f"group {name!r} not found")
    return group


def _open_task(uow, task_id: int) -> orm.Task:
    task = uow.repo.task_for_update(task_id)
    if task.status == "closed":
        raise TaskClosed(f"task {task_id} is closed")
    return task


def _note(uow, task: orm.Task, kind: str, text: str, author: str) -> None:
    uow.repo.insert_note(task_id=task.id, kind=kind, text=text, author=author)


def _touch(task: orm.Task) -> None:
    # Bumps the optimistic-lock version even when only related rows change, so two
    # concurrent writers on one task are serialized by a retry instead of interleaving.
    task.updated_at = orm.utcnow()


def _new_ticket(uow, title: str, description: str, customer: str | None) -> orm.Ticket:
    # The customer is named; an unknown name creates it, none means our own business.
    ticket = orm.Ticket(title=title, description=description or "",
                        customer=customers.customer_of_ticket(uow, customer))
    uow.repo.add(ticket)
    uow.repo.flush()
    return ticket


def _new_task(uow, ticket: orm.Ticket, title: str, description: str, holder: orm.Group | None,
              actor: str, priority: str) -> orm.Task:
    task = uow.repo.insert_task(ticket, holder, title=title, description=description or "",
                                priority=priority)
    if holder is not None:
        processes.start_for_event(uow, task, Event(NEW_ASSIGNMENT, actor=actor))
    return task


def create_ticket(uow, title: str, description: str = "", customer: str | None = None) -> dict:
    """Opens a ticket."""
    ticket = _new_ticket(uow, title, description, customer)
    uow.commit()
    return ticket_view(ticket)


def create_task(uow, ticket_id: int, title: str, description: str = "", group: str | None = None,
                actor: str = "system", priority: str = "normal") -> dict:
    """Adds a task to a ticket; assigning it to an integrated group starts new_assignment."""
    if not group:
        task = _new_task(uow, uow.repo.ticket(ticket_id), title, description, None, actor,
                         priority)
        uow.commit()
        return task_view(task)
    # the hot path: ticket, group, provider and bindings as plain rows, read in one statement
    ticket, holder = uow.repo.ticket_and_group(ticket_id, group)
    if holder is None:
        raise NotFound(f"group {group!r} not found")
    task = uow.repo.insert_task_row(ticket, holder, title=title, description=description or "",
                                    priority=priority)
    processes.start_for_event(uow, task, Event(NEW_ASSIGNMENT, actor=actor))
    uow.commit()
    return task_view(task)


def assign_task(uow, task_id: int, group: str, actor: str = "system") -> dict:
    """Assigns a task to a group. To an integrated group this is a (re-)assignment: Submit Request."""
    task = _open_task(uow, task_id)
    task.group = _group(uow, group)
    task.solution_pending = False
    _note(uow, task, "assignment", f"Assigned to {group}", actor)
    _touch(task)
    uow.repo.flush()
    processes.start_for_event(uow, task, Event(NEW_ASSIGNMENT, actor=actor))
    uow.commit()
    return task_view(task)


def add_update(uow, task_id: int, text: str, actor: str = "system") -> dict:
    """Adds update text; for an integrated group the update_message process sends it."""
    if not text.strip():
        raise InvalidInput("update text must not be empty", field="text")
    task = _open_task(uow, task_id)
    _note(uow, task, "update", text, actor)
    _touch(task)
    processes.start_for_event(uow, task, Event(UPDATE_MESSAGE, message=text, actor=actor))
    uow.commit()
    return task_view(task)


def close_task(uow, task_id: int, solution: str, actor: str = "system") -> dict:
    """Closes a task with its solution; for an integrated group the closure process runs."""
    if not solution.strip():
        raise InvalidInput("a solution is required to close a task", field="solution")
    task = _open_task(uow, task_id)
    task.solution = solution
    task.solution_pending = False
    task.status = "closed"
    _note(uow, task, "closure", solution, actor)
    uow.repo.flush()
    processes.start_for_event(uow, task, Event(CLOSURE, message=solution, actor=actor))
    task_links.close_at_providers(uow, task)  # tickets providers opened are closed there too
    uow.commit()
    return task_view(task)


def decline_solution(uow, task_id: int, reason: str, actor: str = "system") -> dict:
    """Declines a solution the provider returned; runs update_message as Resolution Rejection."""
    if not reason.strip():
        raise InvalidInput("a reason is required to decline a solution", field="reason")
    task = _open_task(uow, task_id)
    if not task.solution_pending:
        raise Conflict(f"task {task_id} has no returned solution to decline")
    task.solution_pending = False
    _note(uow, task, "resolution_rejection", reason, actor)
    _touch(task)
    processes.start_for_event(uow, task, Event(RESOLUTION_REJECTION, message=reason, actor=actor))
    uow.commit()
    return task_view(task)


def get_task(uow, task_id: int) -> dict:
    return task_view(uow.repo.task(task_id))


def open_ticket(uow, title: str, description: str, customer: str | None, group: str,
                actor: str) -> dict:
    """Opens a ticket with its first task for a group (the agent's "new ticket" form), in one
    transaction: a failure leaves neither behind."""
    holder = _group(uow, group)
    ticket = _new_ticket(uow, title, description, customer)
    task = _new_task(uow, ticket, title, description, holder, actor, "normal")
    uow.commit()
    return task_view(task)
