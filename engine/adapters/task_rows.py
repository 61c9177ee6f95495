"""A task with its ticket, group, provider and bindings as plain rows: what the hot paths
(new assignment, inbound events) read in one statement instead of materialising ORM objects.

They answer the same attributes as the ORM entities the services and operators read
(`task.group.provider.name`, `group.binding_for(...)`, `task.ticket.customer`…), so a use case
or an operator works on either. A `TaskRow` remembers what is assigned to its columns; the
repository writes that with one UPDATE and the version check when the unit of work commits
(docs/design/write-path.md §2). Only columns may be assigned: a relation cannot change here.
"""

from __future__ import annotations

from types import SimpleNamespace

TASK_COLUMNS = ("id", "ticket_id", "title", "description", "group_id", "status",
                "external_reference", "solution", "solution_pending", "priority", "version",
                "created_at", "updated_at")


class ProviderRow(SimpleNamespace):
    """A provider's columns (name, channel, endpoint_url, email, password_hash, tag_labels…)."""


class BindingRow(SimpleNamespace):
    """A group's binding of an event to a process, with its process's latest model id."""


class CustomerRow(SimpleNamespace):
    """A ticket's customer: id and name."""


class TicketRow(SimpleNamespace):
    """A ticket's id, title, description, customer_id and `customer` (a CustomerRow or None)."""


class GroupRow(SimpleNamespace):
    """A group with its `provider` (a ProviderRow or None) and `bindings` (BindingRows)."""

    def process_for(self, binding_event: str) -> str | None:
        binding = self.binding_for(binding_event)
        return binding.process_id if binding is not None else None

    def binding_for(self, binding_event: str) -> BindingRow | None:
        return next((b for b in self.bindings if b.event == binding_event), None)


class TaskRow:
    """A task's columns with its `ticket` and `group`; assignments are kept for the write."""

    __slots__ = (*TASK_COLUMNS, "ticket", "group", "earlier_answer", "_changed")

    def __init__(self, columns: dict, ticket: TicketRow, group: GroupRow | None,
                 earlier_answer: dict | None = None) -> None:
        setter = object.__setattr__
        for name in TASK_COLUMNS:
            setter(self, name, columns[name])
        setter(self, "ticket", ticket)
        setter(self, "group", group)
        # the answer the group's provider got for the event's request id, read with the task
        setter(self, "earlier_answer", earlier_answer)
        setter(self, "_changed", {})

    def __setattr__(self, name: str, value) -> None:
        if name not in TASK_COLUMNS or name in ("id", "version"):
            raise AttributeError(f"a task row cannot change {name!r}")
        self._changed[name] = value
        object.__setattr__(self, name, value)

    def changes(self) -> dict:
        """The columns assigned since the row was read or last written."""
        return dict(self._changed)

    def written(self, version: int, updated_at) -> None:
        """The repository stored the changes as `version` at `updated_at`."""
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "updated_at", updated_at)
        self._changed.clear()

    def __repr__(self) -> str:
        return f"TaskRow(id={self.id}, version={self.version})"
