"""Dry-run of a process version against a group's recorded history, before binding it.

Each of the group's N most recent tasks is replayed (engine.services.dry_run_replay) into the
group's processes, the tried version standing in for the bindings it would take; channels are
stubbed and the clock simulated, nothing is sent and nothing is stored. The report lists per
task the requests the tried version would have sent against those the bound processes did
send, and the instances that would end in `error` or wait for ever.

The history is read in one short unit of work (`gather`); the replay runs after it, holding
no database lock (`run` does both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from engine.adapters.bpmn import validate_bpmn
from engine.domain import history
from engine.domain.events import EVENTS
from engine.exceptions import InvalidInput, NotFound
from engine.services.dry_run_replay import Replay, replay_task
from engine.services.operators import OPERATORS, task_variable, ticket_variable

MAX_TASKS = 200
NOTE_KINDS = ("assignment", *history.NOTE_EVENTS)
DELIVERED_MESSAGES = {kind.message for kind in EVENTS.values() if kind.message}
SEVERITY = ("same", "different", "waits_forever", "error")


def _group(uow, name: str):
    group = uow.repo.group_by_name(name)
    if group is None:
        raise NotFound(f"group {name!r} not found")
    if not group.integrated or group.provider is None:
        raise InvalidInput(f"group {name!r} is not integrated: it runs no processes",
                           field="group")
    return group


def _bindings(uow, group, process_id: str, spec, event: str | None) -> tuple[dict, list[str]]:
    """{binding: (process_id, spec)} with the tried version in place, and the bindings it took."""
    bound = {b.event: b.process_id for b in group.bindings}
    replaced = sorted({e for e, pid in bound.items() if pid == process_id} | ({event} - {None}))
    if not replaced:
        raise InvalidInput(f"group {group.name} does not bind process {process_id}; name the "
                           "event to try it for", field="event")
    bindings = {}
    for binding, pid in {**bound, **dict.fromkeys(replaced, process_id)}.items():
        if binding in replaced:
            bindings[binding] = (process_id, spec)
            continue
        model = uow.repo.latest_model(pid)
        if model is not None:
            bindings[binding] = (pid, uow.context.runtime.load(model.id, model.bpmn_xml))
    return bindings, replaced


def _history(uow, task, group) -> history.History:
    notes = [history.Note(*row) for row in uow.repo.history_notes(task.id, NOTE_KINDS)]
    exchanges = [history.Exchange(i, rt, d, st, p, ch, at, pl)
                 for i, rt, d, st, p, ch, at, pl in uow.repo.history_exchanges(task.id)]
    breaches = tuple(history.Step(b.detected_at, "sla_breach", f"{b.metric} target missed", {
        "target": b.metric, "priority": b.priority or None, "target_minutes": b.target_minutes,
        "overdue_seconds": b.overdue_seconds, "started_at": b.started_at.isoformat(),
        "due_at": b.due_at.isoformat()}, "sla", "sla")
        for b in uow.repo.sla_breaches_of_task(task.id) if b.provider_id == group.provider_id)
    return history.read_history(notes, exchanges, group.name, group.provider_id, task.created_at,
                                task.group.name if task.group else None, breaches)


@dataclass(frozen=True)
class TaskPlan:
    task_id: int
    title: str
    is_open: bool
    start: dict  # the task variable as it was when the group got the task
    context: dict  # ticket and provider variables
    past: history.History
    recorded: dict  # event -> statuses of the bound version's instances, oldest first


@dataclass(frozen=True)
class Plan:
    process_id: str
    group: str
    replaced: list[str]
    bindings: dict = field(repr=False)
    tasks_requested: int = 0
    now: datetime | None = None
    tasks: list[TaskPlan] = field(default_factory=list)


def _task_plan(uow, task, group) -> TaskPlan:
    recorded: dict[str, list[str]] = {}
    for _, event, status in uow.repo.instance_outcomes(task.id):
        recorded.setdefault(event, []).append(status)
    start = {**task_variable(task), "group": group.name, "status": "open",
             "external_reference": None, "solution": None}
    context = {"ticket": ticket_variable(task.ticket),
               "provider": {"name": group.provider.name, "channel": group.provider.channel}}
    return TaskPlan(task.id, task.title, task.status == "open", start, context,
                    _history(uow, task, group), recorded)


def gather(uow, bpmn: bytes, filename: str, group: str, tasks: int = 20,
           event: str | None = None) -> Plan:
    """Validates the BPMN (an invalid model gives its errors) and reads what the replay
    needs: the group's bindings and its `tasks` most recent tasks' history. Reads only."""
    if not 1 <= tasks <= MAX_TASKS:
        raise InvalidInput(f"tasks must be between 1 and {MAX_TASKS}", field="tasks")
    if event is not None and event not in EVENTS:
        raise InvalidInput(f"unknown event {event!r}", field="event")
    parsed = validate_bpmn(bpmn, filename, OPERATORS,
                           max_bytes=uow.context.settings.bpmn_max_bytes)
    row = _group(uow, group)
    spec = uow.context.runtime.load(("dry-run", hashlib.sha256(bpmn).hexdigest()), bpmn)
    bindings, replaced = _bindings(uow, row, parsed.process_id, spec, event)
    plans = [_task_plan(uow, uow.repo.task(task_id), row) for task_id in
             uow.repo.recent_task_ids_of_group(row.id, row.provider_id, tasks)]
    return Plan(parsed.process_id, row.name, replaced, bindings, tasks,
                uow.context.clock.now(), plans)


def _stuck(simulation, recorded: str | None, task_open: bool) -> str | None:
    """Why an instance left waiting would wait for ever, or None."""
    result = simulation.result
    if simulation.status != "waiting" or result.next_timer_at or simulation.waits_at_user_task:
        return None
    unknown = sorted(set(result.waiting_messages) - DELIVERED_MESSAGES)
    if unknown:
        return f"waits for {', '.join(unknown)}, which liaison never delivers"
    if not task_open:
        return "still waits after the task was closed"
    if recorded is not None and recorded != "waiting":
        return f"still waits where the bound version's instance is {recorded}"
    return None


def _instances(plan: TaskPlan, replay: Replay) -> list[dict]:
    """Each simulated instance: where it is now, how it ends, and the bound version's."""
    seen: dict[str, int] = {}
    result = []
    for (event, process_id, simulation), now in zip(replay.instances, replay.now_status,
                                                    strict=True):
        index = seen[event] = seen.get(event, -1) + 1
        before = plan.recorded.get(event, [])
        status = before[index] if index < len(before) else None
        outcome = simulation.result
        result.append({"event": event, "process_id": process_id, "status": now,
                       "ends": simulation.status, "error": outcome.error if outcome else None,
                       "waiting_for": outcome.waiting_messages if outcome else [],
                       "recorded_status": status, "timers_cut": simulation.timers_truncated,
                       "waits_forever": _stuck(simulation, status, plan.is_open)})
    return result


def _task_report(runtime, plan: TaskPlan, bindings: dict, now: datetime) -> dict:
    replay = replay_task(runtime, bindings, plan.start, plan.context, plan.past.steps, now)
    sent = [{"request_type": e.request_type, "at": e.at.isoformat(), "status": e.status}
            for e in plan.past.sent]
    instances = _instances(plan, replay)
    would_send = replay.sends[:replay.sent_by_now]
    differs = [s["request_type"] for s in sent] != [s["request_type"] for s in would_send]
    outcome = ("error" if any(i["ends"] == "error" for i in instances) else
               "waits_forever" if any(i["waits_forever"] for i in instances) else
               "different" if differs else "same")
    return {"task_id": plan.task_id, "title": plan.title, "events": len(plan.past.steps),
            "sent": sent, "would_send": would_send, "differs": differs,
            "would_send_later": replay.sends[replay.sent_by_now:],
            "instances": instances, "notes": replay.notes, "mails": replay.mails,
            "truncated": replay.truncated, "outcome": outcome}


def report(runtime, plan: Plan) -> dict:
    """Replays every task of the plan (no database needed) and reports the differences."""
    reports = [_task_report(runtime, task, plan.bindings, plan.now) for task in plan.tasks]
    counts = {name: sum(1 for r in reports if r["outcome"] == name) for name in SEVERITY}
    return {"process_id": plan.process_id, "group": plan.group, "bindings": plan.replaced,
            "tasks_requested": plan.tasks_requested, "tasks_replayed": len(reports),
            "summary": counts, "ok": counts["same"] == len(reports),
            "message": None if reports else f"group {plan.group} has no recorded tasks to "
                                            "replay: nothing to compare",
            "tasks": reports}


def run(core, bpmn: bytes, filename: str, group: str, tasks: int = 20,
        event: str | None = None) -> dict:
    """The dry-run of a BPMN file (the CLI's): gather, then replay."""
    return report(core.runtime, core.run(gather, bpmn, filename, group, tasks, event))


def _model(uow, model_id: int) -> tuple[bytes, str, int]:
    model = uow.repo.model(model_id)
    return bytes(model.bpmn_xml), model.filename, model.version


def run_model(core, model_id: int, group: str, tasks: int = 20,
              event: str | None = None) -> dict:
    """The dry-run of a deployed version (REST and web)."""
    bpmn, filename, version = core.run(_model, model_id)
    return {"model_id": model_id, "version": version,
            **run(core, bpmn, filename, group, tasks, event)}


def _types(items: list[dict]) -> str:
    return ", ".join(i["request_type"] for i in items) or "nothing"


def report_lines(report: dict) -> list[str]:
    """The report as text, one task a line (and one line per instance with a problem)."""
    lines = [f"dry-run of {report['process_id']} for group {report['group']} (as "
             f"{', '.join(report['bindings'])}): {report['tasks_replayed']} task(s) replayed"]
    if report["message"]:
        lines.append(report["message"])
    for task in report["tasks"]:
        lines.append(f"task #{task['task_id']} {task['title']!r}: {task['outcome']}; sent "
                     f"{_types(task['sent'])}; would send {_types(task['would_send'])}")
        for instance in task["instances"]:
            problem = instance["waits_forever"] or (
                f"ends in error: {instance['error']}" if instance["ends"] == "error" else None)
            if problem:
                lines.append(f"  {instance['event']} ({instance['process_id']}): {problem}")
    summary = report["summary"]
    lines.append(f"{summary['same']} same, {summary['different']} different, "
                 f"{summary['waits_forever']} waiting for ever, {summary['error']} in error")
    return lines
