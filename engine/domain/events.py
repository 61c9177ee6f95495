"""Integrated-group events: which process binding each starts and how its exchange is recorded."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class RequestType(StrEnum):
    SUBMIT_REQUEST = "Submit Request"
    REASSIGNED = "Reassigned"
    RESOLUTION_REJECTION = "Resolution Rejection"
    UPDATE = "Update"
    CLOSED = "Closed"
    ACKNOWLEDGEMENT = "Acknowledgement"
    NEW_TICKET = "New Ticket"  # a ticket the provider opened (CONTRACT §7)


class Direction(StrEnum):
    IN = "In"
    OUT = "Out"


class ExchangeStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class EventKind:
    name: str
    request_type: RequestType | None  # None: an event that is no exchange (an SLA breach)
    direction: Direction | None
    binding: str  # the group's process binding this event starts
    message: str | None = None  # BPMN message delivered to waiting instances (inbound events)


NEW_ASSIGNMENT = EventKind("new_assignment", RequestType.SUBMIT_REQUEST, Direction.OUT,
                           "new_assignment")
UPDATE_MESSAGE = EventKind("update_message", RequestType.UPDATE, Direction.OUT, "update_message")
RESOLUTION_REJECTION = EventKind("resolution_rejection", RequestType.RESOLUTION_REJECTION,
                                 Direction.OUT, "update_message")
CLOSURE = EventKind("closure", RequestType.CLOSED, Direction.OUT, "closure")
EXTERNAL_ACKNOWLEDGEMENT = EventKind("external_acknowledgement", RequestType.ACKNOWLEDGEMENT,
                                     Direction.IN, "external_acknowledgement",
                                     "ExternalAcknowledgement")
EXTERNAL_UPDATE = EventKind("external_update", RequestType.UPDATE, Direction.IN,
                            "external_update", "ExternalUpdateMessage")
EXTERNAL_REASSIGNMENT = EventKind("external_reassignment", RequestType.REASSIGNED, Direction.IN,
                                  "external_reassignment", "ExternalReassignment")
# The worker found that the provider missed an SLA target on the task (engine.services.sla);
# the event variable then also carries `sla` (target, minutes, overdue_seconds, ...).
SLA_BREACH = EventKind("sla_breach", None, None, "sla_breach")

EVENTS = {e.name: e for e in (NEW_ASSIGNMENT, UPDATE_MESSAGE, RESOLUTION_REJECTION, CLOSURE,
                              EXTERNAL_ACKNOWLEDGEMENT, EXTERNAL_UPDATE, EXTERNAL_REASSIGNMENT,
                              SLA_BREACH)}

REQUIRED_BINDINGS = ("new_assignment", "update_message", "closure")
OPTIONAL_BINDINGS = ("external_acknowledgement", "external_update", "external_reassignment",
                     "sla_breach")
ALL_BINDINGS = REQUIRED_BINDINGS + OPTIONAL_BINDINGS

BUNDLED_PROCESSES = {
    "new_assignment": "liaison_new_assignment",
    "update_message": "liaison_update_message",
    "closure": "liaison_closure",
}


@dataclass(frozen=True)
class Event:
    """One occurrence of an event, as a process sees it in its `event` variable."""

    kind: EventKind
    message: str = ""
    channel: str = "web"
    actor: str = "system"
    at: datetime | None = None
    details: dict = field(default_factory=dict)  # extra keys of the variable (sla_breach: "sla")

    def as_variable(self) -> dict:
        at = self.at or datetime.now(UTC)
        return {"type": self.kind.name, "request_type": str(self.kind.request_type or ""),
                "direction": str(self.kind.direction or ""), "message": self.message,
                "channel": self.channel, "actor": self.actor, "at": at.isoformat(),
                **self.details}


@dataclass(frozen=True)
class TaskSnapshot:
    """The `task` variable: plain values, never an ORM object."""

    id: int
    ticket_id: int
    title: str
    description: str
    group: str | None
    status: str
    external_reference: str | None
    solution: str | None
    priority: str
    customer: str | None

    def as_variable(self) -> dict:
        return asdict(self)


def process_variables(event: Event, task: TaskSnapshot, ticket: dict, provider: dict) -> dict:
    """The variables every process receives, the same names whatever the event (CONTRACT §2)."""
    return {"event": event.as_variable(), "task": task.as_variable(), "ticket": dict(ticket),
            "provider": dict(provider)}

