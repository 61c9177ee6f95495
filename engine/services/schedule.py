"""Periodic jobs of the workers: polling a provider, nightly runs, housekeeping.

A job's due time and lease live in the database, so with several `liaison worker` processes
each due job runs once, and a restart neither skips nor repeats a run. The lease is the
worker's (engine.services.leases: short, renewed by its heartbeat): a crashed worker's run
is owed and taken over one lease length after the crash, never while the worker lives. A
job does its work in units of work of its own and returns a summary (kept as the job's last
result, shown to operators).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from engine.exceptions import NotFound
from engine.services.leases import lease_length


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[object], dict]  # given the Core
    next_due: Callable[[datetime], datetime]  # given the moment a run starts
    # Longer than a run can take: a worker stuck in a run for longer stops renewing its
    # leases (engine.worker), so the run is taken over.
    lease: timedelta = timedelta(minutes=10)
    start_now: bool = True  # first run right away; else at next_due(now)


def every(seconds: float) -> Callable[[datetime], datetime]:
    step = timedelta(seconds=seconds)
    return lambda moment: moment + step


def daily_at(hour: int, minute: int = 0) -> Callable[[datetime], datetime]:
    """The next hh:mm (in the moment's time zone, UTC here) after a moment."""
    at = time(hour, minute)

    def next_due(moment: datetime) -> datetime:
        candidate = datetime.combine(moment.date(), at, tzinfo=moment.tzinfo)
        return candidate if candidate > moment else candidate + timedelta(days=1)

    return next_due


def register(uow, jobs: list[Job]) -> None:
    """Creates the rows of new jobs; existing ones keep their schedule across restarts."""
    now = uow.context.clock.now()
    uow.repo.ensure_jobs([job.name for job in jobs],
                         {job.name: now if job.start_now else job.next_due(now) for job in jobs})
    uow.commit()


def claim_due(uow, jobs: list[Job], worker: str) -> list[str]:
    """Leases the due jobs to this worker and commits; returns their names."""
    now = uow.context.clock.now()
    lease = lease_length(uow.context.settings)
    by_name = {job.name: job for job in jobs}
    claimed = []
    for name in uow.repo.due_job_names(now):
        job = by_name.get(name)
        if job is not None and uow.repo.lease_job(name, worker, now, lease, job.next_due(now)):
            claimed.append(name)
    uow.commit()
    return claimed


def finish(uow, job: Job, worker: str, result: dict | None, error: str | None) -> None:
    """Records a run and when the job is next due; a lost lease records nothing."""
    row = uow.repo.scheduled_job(job.name)
    if row is None or row.lease_by != worker:
        return
    row.runs += 1
    row.last_finished_at = uow.context.clock.now()
    row.last_result, row.last_error = result or {}, error
    row.lease_by, row.lease_until = None, None
    uow.commit()


def run_soon(uow, name: str) -> None:
    """Makes a job due now (an on-demand run, or a callback's hint): the next worker pass runs it."""
    row = uow.repo.scheduled_job(name)
    if row is None:
        raise NotFound(f"no scheduled job named {name!r}")
    row.due_at = min(row.due_at, uow.context.clock.now())
    uow.after_commit.append(uow.context.work_available.set)
    uow.commit()


def job_views(uow) -> list[dict]:
    return [{"name": row.name, "due_at": row.due_at.isoformat(), "runs": row.runs,
             "running": row.lease_by is not None,
             "last_finished_at": row.last_finished_at.isoformat() if row.last_finished_at else None,
             "last_result": row.last_result, "last_error": row.last_error}
            for row in uow.repo.scheduled_jobs()]
