"""Replaying one task's recorded events into process instances on a simulated clock, with
every channel stubbed: what the processes would have sent is recorded, nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.adapters.bpmn_replay import Simulation, simulated_now
from engine.domain.events import EVENTS, Event, RequestType, TaskSnapshot, process_variables
from engine.domain.history import Step
from engine.exceptions import InvalidInput
from engine.services.operators import OPERATORS, SETTABLE_FIELDS

MAX_STEPS = 200  # events replayed per task
SETTLE = timedelta(days=366)  # after the history, timers run this far to see how instances end
REQUESTS = {"provider.submit_request": RequestType.SUBMIT_REQUEST,
            "provider.send_update": RequestType.UPDATE,
            "provider.send_closure": RequestType.CLOSED,
            "provider.reject_resolution": RequestType.RESOLUTION_REJECTION}


@dataclass
class Replay:
    """What the replay of one task produced."""

    sends: list[dict] = field(default_factory=list)  # [{"request_type", "at", "event"}]
    notes: list[str] = field(default_factory=list)
    mails: list[dict] = field(default_factory=list)
    instances: list[tuple[str, str, Simulation]] = field(default_factory=list)
    now_status: list[str] = field(default_factory=list)  # of each instance, when history ends
    sent_by_now: int = 0  # sends[:sent_by_now] happened within the recorded history
    truncated: bool = False


class RecordingOperators:
    """Stands in for every operator as the engine's would answer, recording instead of
    sending. `event` is the event the acting instance runs for (set by the replay)."""

    def __init__(self, task: dict, replay: Replay) -> None:
        self.task, self.replay, self.event = task, replay, "new_assignment"

    def __call__(self, operator: str, params: dict) -> dict:
        if operator not in OPERATORS:
            raise InvalidInput(f"unknown service operator {operator!r}")
        if operator in REQUESTS:
            return self._request(operator)
        return getattr(self, "_" + operator.split(".")[1])(**params)

    def _request(self, operator: str) -> dict:
        request_type = REQUESTS[operator]
        if operator == "provider.send_update" and self.event == "resolution_rejection":
            request_type = RequestType.RESOLUTION_REJECTION  # as the engine does
        at = simulated_now()
        self.replay.sends.append({"request_type": str(request_type), "event": self.event,
                                  "at": at.isoformat() if at else None})
        return {"exchange_id": None, "request_type": str(request_type)}

    def _add_note(self, text: str = "", **_ignored) -> dict:
        if not str(text).strip():
            raise InvalidInput("task.add_note needs a non-empty 'text' parameter")
        self.replay.notes.append(str(text)[:500])
        return {"note": str(text)[:200]}

    def _set_field(self, field: str = "", value: object = None, **_ignored) -> dict:
        if field not in SETTABLE_FIELDS:
            raise InvalidInput(f"task.set_field: field must be one of {sorted(SETTABLE_FIELDS)}")
        self.task[field] = None if value is None else str(value)[:500]
        return {"field": field, "value": value}

    def _send(self, to: str = "", subject: str = "", **_ignored) -> dict:  # mail.send
        if "@" not in str(to):
            raise InvalidInput("mail.send needs a 'to' address")
        self.replay.mails.append({"to": str(to), "subject": str(subject)})
        return {"to": str(to)}


def _apply(task: dict, step: Step) -> None:
    """What the engine writes on the task before its processes hear of the event."""
    reference = step.payload.get("external_reference")
    if step.kind == "external_acknowledgement" and reference:
        task["external_reference"] = reference
    elif step.kind in ("external_update", "external_reassignment"):
        task["external_reference"] = task["external_reference"] or reference or None
        if step.payload.get("solution"):
            task["solution"] = step.payload["solution"]
    elif step.kind == "closure":
        task["status"], task["solution"] = "closed", step.message


def _variables(task: dict, context: dict, step: Step) -> dict:
    details = {"sla": step.payload} if step.kind == "sla_breach" else {}
    event = Event(EVENTS[step.kind], message=step.message, channel=step.channel,
                  actor=step.actor, at=step.at, details=details)
    return process_variables(event, TaskSnapshot(**task), context["ticket"], context["provider"])


def replay_task(runtime, bindings: dict, task: dict, context: dict, steps: list[Step],
                until: datetime) -> Replay:
    """Replays `steps` (oldest first) for `task` into the processes of `bindings`
    ({binding: (process_id, SpecHandle)}), lets their timers run up to `until` (now), and
    then on until the instances settle (how they would end if nothing else happened)."""
    replay, snapshot = Replay(truncated=len(steps) > MAX_STEPS), dict(task)
    operators = RecordingOperators(snapshot, replay)

    def run_timers(moment: datetime) -> None:
        for event, _, simulation in replay.instances:
            operators.event = event
            simulation.advance_to(moment)

    for step in steps[:MAX_STEPS]:
        run_timers(step.at)
        _apply(snapshot, step)
        operators.event = step.kind
        kind = EVENTS[step.kind]
        if kind.message:
            for _, _, simulation in replay.instances:
                simulation.deliver(kind.message, task["id"], step.payload, step.at)
        if kind.binding in bindings:
            process_id, spec = bindings[kind.binding]
            simulation = Simulation(runtime, spec, operators)
            simulation.start(_variables(snapshot, context, step), step.at)
            replay.instances.append((step.kind, process_id, simulation))
    run_timers(until)
    replay.sent_by_now = len(replay.sends)
    replay.now_status = [simulation.status for _, _, simulation in replay.instances]
    run_timers(until + SETTLE)
    return replay
