"""A worker's leases follow its life: short, renewed by its heartbeat while it runs.

Outbox rows and scheduled jobs are leased to one worker for `worker_lease_seconds` (10 s by
default) and renewed every quarter of that while the worker holds them. A killed worker stops
renewing, so its rows are taken over by another worker one lease length after its death;
a living worker's rows never are (a worker that cannot renew stops starting deliveries, see
`engine.worker`). Clocks of the hosts running workers must agree (NTP) to well under a lease.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta


def lease_length(settings) -> timedelta:
    return timedelta(seconds=settings.worker_lease_seconds)


def renew(uow, worker: str) -> int:
    """Extends every lease `worker` holds; returns how many rows it holds."""
    until = uow.context.clock.now() + lease_length(uow.context.settings)
    held = uow.repo.renew_outbox_leases(worker, until) + uow.repo.renew_job_leases(worker, until)
    uow.commit()
    return held


def release(uow, worker: str, keep: Collection[int] = ()) -> int:
    """Gives back the outbox rows `worker` claimed and will not deliver (it is stopping, or
    could not renew in time); a row another worker took over meanwhile is left alone, and so
    are `keep`, the rows whose deliveries were cut short or are still on their way (they may
    have been sent)."""
    released = uow.repo.release_outbox_leases(worker, keep)
    uow.commit()
    return released
