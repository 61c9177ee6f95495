"""SLA breaches: the worker's job finds clocks running past their target and records each
breach once per task, provider and target — a history entry, a badge in the inbox, and an
`sla_breach` event that starts the process the task's group binds to it (if any).

Once means once across restarts and several workers: the job runs under a lease
(engine.services.schedule), and the breach row is unique per task, provider and metric.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from engine.domain import sla
from engine.domain.events import SLA_BREACH, Event
from engine.exceptions import LiaisonError
from engine.services import processes
from engine.services.sla import clocks_since, targets_by_provider

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=90)  # clocks started earlier are no longer watched


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{max(int(seconds), 0)} s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60}h {rest % 60:02d}m"
    return f"{days}d {text}" if days else text


def due_breaches(uow) -> list[dict]:
    """Clocks of open tasks, still with the provider, that ran past their target and have no
    breach recorded yet."""
    now = uow.context.clock.now()
    watched = [clock for clock, is_open, holder in clocks_since(uow, now - LOOKBACK,
                                                                open_only=True)
               if is_open and holder == clock.provider_id]
    known = uow.repo.sla_breach_keys([c.task_id for c in watched])
    late = [m for m in sla.measure(watched, targets_by_provider(uow), now)
            if m.breached and not m.done
            and (m.clock.task_id, m.clock.provider_id, m.metric) not in known]
    return [{"task_id": m.clock.task_id, "provider_id": m.clock.provider_id, "metric": m.metric,
             "priority": m.target.priority, "target_minutes": m.target.minutes,
             "started_at": m.clock.started_at, "due_at": m.due_at} for m in late]


def _message(breach: dict, overdue: int) -> str:
    scope = f" (priority {breach['priority']})" if breach["priority"] else ""
    return (f"SLA breach: the {breach['metric']} target of "
            f"{duration_text(breach['target_minutes'] * 60)}{scope} was exceeded by "
            f"{duration_text(overdue)}; the clock started {breach['started_at']:%Y-%m-%d %H:%M} UTC")


def record_breach(uow, breach: dict) -> bool:
    """Records one breach found by `due_breaches`: a history entry, and the `sla_breach` event
    for the group's bound process. False when it was recorded already (nothing changes)."""
    task = uow.repo.task_for_update(breach["task_id"])
    key = (breach["task_id"], breach["provider_id"], breach["metric"])
    if key in uow.repo.sla_breach_keys([task.id]) or task.status != "open":
        return False
    now = uow.context.clock.now()
    overdue = int((now - breach["due_at"]).total_seconds())
    uow.repo.insert_sla_breach(**breach, overdue_seconds=overdue, detected_at=now)
    message = _message(breach, overdue)
    uow.repo.insert_note(task_id=task.id, kind="sla_breach", text=message, author="sla")
    details = {"target": breach["metric"], "priority": breach["priority"] or None,
               "target_minutes": breach["target_minutes"], "overdue_seconds": overdue,
               "started_at": breach["started_at"].isoformat(),
               "due_at": breach["due_at"].isoformat()}
    processes.start_for_event(uow, task, Event(SLA_BREACH, message=message, channel="sla",
                                               actor="sla", at=now, details={"sla": details}))
    task.updated_at = now
    uow.commit()
    return True


def check_breaches(core) -> dict:
    """The worker's SLA job: records every new breach, each in its own unit of work."""
    found = core.run(due_breaches)
    recorded, failed = 0, 0
    for breach in found:
        try:
            recorded += bool(core.run(record_breach, breach))
        except LiaisonError as exc:  # e.g. a bound process that is not deployed: next run retries
            failed += 1
            log.error("SLA breach of task %s not recorded: %s", breach["task_id"], exc.message)
    return {"found": len(found), "recorded": recorded, "failed": failed}
