"""Queries of the workers' leases and of request idempotency (a mixin of `Repository`):
a living worker renews what it holds, a stopping one gives it back; REST requests applied
under an Idempotency-Key."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update

from engine.adapters import orm


class WorkRepository:
    session: object

    def renew_outbox_leases(self, worker: str, until: datetime) -> int:
        """Extends the leases a living worker holds (its heartbeat)."""
        return self.session.execute(
            update(orm.OutboxItem)
            .where(orm.OutboxItem.status == "pending", orm.OutboxItem.locked_by == worker)
            .values(locked_until=until)).rowcount

    def release_outbox_leases(self, worker: str, keep: Collection[int] = ()) -> int:
        """Gives back the rows a stopping worker claimed but did not deliver (`keep`: those it
        may have sent, left to run out as a crashed worker's would)."""
        query = update(orm.OutboxItem).where(orm.OutboxItem.status == "pending",
                                             orm.OutboxItem.locked_by == worker)
        if keep:
            query = query.where(orm.OutboxItem.id.not_in(list(keep)))
        return self.session.execute(query.values(locked_until=None, locked_by=None)).rowcount

    def renew_job_leases(self, worker: str, until: datetime) -> int:
        return self.session.execute(
            update(orm.ScheduledJob).where(orm.ScheduledJob.lease_by == worker)
            .values(lease_until=until)).rowcount

    # -- idempotency records (REST Idempotency-Key)
    def idempotency_record(self, scope: str, key: str) -> orm.IdempotencyRecord | None:
        return self.session.scalar(select(orm.IdempotencyRecord).where(
            orm.IdempotencyRecord.scope == scope, orm.IdempotencyRecord.key == key))

    def insert_idempotency_record(self, **values) -> int:
        """Records a request applied under an Idempotency-Key -> its id."""
        return self._insert(orm.IdempotencyRecord, values)

    def delete_idempotency_record(self, record_id: int) -> None:
        self.session.execute(delete(orm.IdempotencyRecord)
                             .where(orm.IdempotencyRecord.id == record_id))

    def purge_idempotency_records(self, now: datetime) -> int:
        return self.session.execute(delete(orm.IdempotencyRecord)
                                    .where(orm.IdempotencyRecord.expires_at < now)).rowcount
