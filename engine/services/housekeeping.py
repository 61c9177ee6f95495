"""Housekeeping that keeps stored state bounded: completed process instances are archived and
purged once they are old enough (their state is most of what an instance stores).

Tasks, exchanges and notes stay: they are the history users read. Running, waiting and failed
instances stay whatever their age: they still matter.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from engine.exceptions import InvalidInput

BATCH = 1_000  # instances per transaction: short transactions, no long lock on the table

Archive = Callable[[list[dict]], None]  # writes instances away before they are deleted


def purge_completed_instances(uow, before: datetime, archive: Archive | None = None,
                              limit: int = BATCH) -> int:
    """Deletes up to `limit` instances completed before `before`, oldest first, after handing
    them to `archive` (if given); commits; returns how many were purged. A failing archive
    purges nothing; a crash after archiving archives them again on the next run."""
    rows = uow.repo.completed_instances_before(before, limit)
    if not rows:
        return 0
    if archive is not None:
        archive(rows)
    purged = uow.repo.delete_instances([row["id"] for row in rows])
    uow.commit()
    return purged


def purge_all(core, before: datetime, archive: Archive | None = None) -> int:
    """Purges in batches until nothing completed before `before` is left; returns the total."""
    total = 0
    while True:
        purged = core.run(purge_completed_instances, before, archive)
        total += purged
        if purged == 0:
            return total


def cutoff(now: datetime, days: int) -> datetime:
    """The moment `days` days before `now`."""
    if days < 0:
        raise InvalidInput("--older-than must be 0 or more days", field="older_than")
    return now - timedelta(days=days)
