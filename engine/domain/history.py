"""A task's recorded history, read back as the events that drove its processes (for dry-runs).

What the engine records is enough to replay: assignments, updates, declined solutions,
closures and SLA breaches are task notes; the provider's answers are In exchanges with their
payload; what the processes sent are Out exchanges. A task is *held* by a group from its
assignment (or its creation in that group) until it is assigned elsewhere; only events while
the group held it are replayed, and only Out exchanges to the group's provider from those
stretches count as what the bound processes sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ASSIGNED = "Assigned to "
NOTE_EVENTS = {"update": "update_message", "resolution_rejection": "resolution_rejection",
               "closure": "closure"}
ANSWER_EVENTS = {"Acknowledgement": "external_acknowledgement", "Update": "external_update",
                 "Reassigned": "external_reassignment"}


@dataclass(frozen=True)
class Note:
    id: int
    kind: str
    text: str
    author: str
    at: datetime


@dataclass(frozen=True)
class Exchange:
    id: int
    request_type: str
    direction: str
    status: str
    provider_id: int | None
    channel: str
    at: datetime
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One event to replay: `kind` is an event name of engine.domain.events."""

    at: datetime
    kind: str
    message: str = ""
    payload: dict = field(default_factory=dict)
    channel: str = "web"
    actor: str = "system"


@dataclass(frozen=True)
class History:
    steps: list[Step]
    sent: list[Exchange]  # Out exchanges to the provider while the group held the task


def _holds(notes: list[Note], exchanges: list[Exchange], group: str, provider_id: int,
           created_at: datetime, current_group: str | None):
    """When the group was assigned the task, and the stretches of time it held it:
    ([assigned at], [(from, until or None)])."""
    moves = [(n.at, n.text[len(ASSIGNED):]) for n in notes
             if n.kind == "assignment" and n.text.startswith(ASSIGNED)]
    if moves:  # created in the group if the provider heard of it before the first move
        first = moves[0][0]
        initial = group if any(e.provider_id == provider_id and e.at < first
                               for e in exchanges) else None
    else:
        initial = current_group
    assigned = ([created_at] if initial == group else []) + [at for at, name in moves
                                                             if name == group]
    spans, holder, since = [], initial, created_at
    for at, name in moves:
        if holder == group and name != group:
            spans.append((since, at))
        if name == group and holder != group:
            since = at
        holder = name
    if holder == group:
        spans.append((since, None))
    return assigned, spans


def _inside(at: datetime, spans) -> bool:
    return any(start <= at and (end is None or at < end) for start, end in spans)


def _answer(exchange: Exchange, provider_id: int) -> Step | None:
    kind = ANSWER_EVENTS.get(exchange.request_type)
    if (kind is None or exchange.direction != "In" or exchange.status != "delivered"
            or exchange.provider_id not in (provider_id, None)):
        return None
    payload = {k: v for k, v in (exchange.payload or {}).items()
               if k in ("external_reference", "message", "solution")}
    message = (payload.get("message") or payload.get("solution")
               or payload.get("external_reference") or "")
    return Step(exchange.at, kind, message, payload, exchange.channel, "provider")


def read_history(notes: list[Note], exchanges: list[Exchange], group: str, provider_id: int,
                 created_at: datetime, current_group: str | None,
                 other_steps: tuple[Step, ...] = ()) -> History:
    """The events to replay for one task and group (with `other_steps` recorded elsewhere,
    e.g. SLA breaches), and what the bound processes sent."""
    assigned, spans = _holds(notes, exchanges, group, provider_id, created_at, current_group)
    steps = [Step(at, "new_assignment") for at in assigned]
    steps += [Step(n.at, NOTE_EVENTS[n.kind], n.text, {}, "web", n.author) for n in notes
              if n.kind in NOTE_EVENTS and _inside(n.at, spans)]
    steps += [step for step in (_answer(e, provider_id) for e in exchanges)
              if step is not None and _inside(step.at, spans)]
    steps += [step for step in other_steps if _inside(step.at, spans)]
    sent = [e for e in exchanges if e.direction == "Out" and e.provider_id == provider_id
            and _inside(e.at, spans)]
    order = {"new_assignment": 0}  # at one moment, the assignment comes first
    return History(sorted(steps, key=lambda s: (s.at, order.get(s.kind, 1))),
                   sorted(sent, key=lambda e: (e.at, e.id)))
