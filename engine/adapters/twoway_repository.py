"""Queries of the two-way link: the providers' inbound settings, the inbound queue, the
provider tickets linked to tasks, and the link manager's updates."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.adapters import orm

PENDING = "pending"
_ITEMS = orm.InboundItem.__table__
_ENQUEUE = {  # many rows in one execution (insertmanyvalues); a repeat comes back as no row
    name: dialect.insert(_ITEMS).on_conflict_do_nothing(
        index_elements=["provider_id", "ticket_ref", "change_key"]).returning(_ITEMS.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
_INSERTS: dict = {}  # per table, built once


class TwowayRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.bind.dialect.name == "postgresql"

    # -- a provider's inbound settings
    def inbound(self, provider: orm.Provider) -> orm.ProviderInbound:
        """The provider's inbound row, created (inbound off) when first needed."""
        row = self.session.get(orm.ProviderInbound, provider.id)
        if row is None:
            row = orm.ProviderInbound(provider=provider, enabled=False,
                                      callback_key=secrets.token_urlsafe(32))
            self.session.add(row)
            self.session.flush()
        return row

    def inbound_by_key(self, key: str) -> orm.ProviderInbound | None:
        return self.session.scalar(select(orm.ProviderInbound).where(
            orm.ProviderInbound.callback_key == key))

    def enabled_provider_ids(self) -> list[int]:
        return list(self.session.scalars(select(orm.ProviderInbound.provider_id).where(
            orm.ProviderInbound.enabled.is_(True), orm.ProviderInbound.group_id.is_not(None))))

    # -- the inbound queue
    def enqueue(self, rows: Iterable[dict]) -> int:
        """Inserts items, skipping those already received (same provider, ticket, change)
        -> how many are new. One statement (built once) for all of them, never an error for
        a repeat."""
        rows = list(rows)
        if not rows:
            return 0
        statement = _ENQUEUE["postgresql" if self._postgres else "sqlite"]
        return len(self._execute(statement, rows).all())

    def insert_row(self, entity, **values) -> int:
        """One Core INSERT (of a statement built once per table) of a new row nobody in this
        transaction reads back -> its id."""
        statement = _INSERTS.get(entity)
        if statement is None:
            table = entity.__table__
            statement = _INSERTS[entity] = insert(table).returning(table.c.id)
        return self._execute(statement, values).scalar_one()

    def _execute(self, statement, params):
        """On the unit of work's connection, past the ORM (new ORM rows are flushed first:
        a row inserted here may refer to them)."""
        if self.session.new:
            self.session.flush()
        return self.session.connection().execute(statement, params)

    def insert_item(self, **values) -> int:
        return self.session.execute(insert(orm.InboundItem).values(**values)
                                    .returning(orm.InboundItem.id)).scalar_one()

    def items_by_ids(self, item_ids: Sequence[int]) -> dict[int, orm.InboundItem]:
        """Several items in one statement (locked until commit on PostgreSQL)."""
        query = select(orm.InboundItem).where(orm.InboundItem.id.in_(list(item_ids)))
        if self._postgres:
            query = query.with_for_update()
        return {item.id: item for item in self.session.scalars(query)}

    def sites_by_refs(self, provider_id: int, refs: Collection[str]
                      ) -> dict[str, orm.ProviderSite]:
        return self._by_refs(orm.ProviderSite, provider_id, refs)

    def devices_by_refs(self, provider_id: int, refs: Collection[str]
                        ) -> dict[str, orm.ProviderDevice]:
        return self._by_refs(orm.ProviderDevice, provider_id, refs)

    def _by_refs(self, model, provider_id: int, refs: Collection[str]) -> dict:
        """The provider's rows of `model` (sites or devices) by their external ids."""
        if not refs:
            return {}
        return {row.external_id: row for row in self.session.scalars(
            select(model).where(model.provider_id == provider_id,
                                model.external_id.in_(list(refs))))}

    def item(self, item_id: int) -> orm.InboundItem | None:
        query = select(orm.InboundItem).where(orm.InboundItem.id == item_id)
        if self._postgres:
            query = query.with_for_update()
        return self.session.scalar(query)

    def item_by_key(self, provider_id: int, ticket_ref: str, change_key: str
                    ) -> orm.InboundItem | None:
        return self.session.scalar(select(orm.InboundItem).where(
            orm.InboundItem.provider_id == provider_id, orm.InboundItem.ticket_ref == ticket_ref,
            orm.InboundItem.change_key == change_key))

    def pending_items(self, provider_ids: Sequence[int], limit: int) -> list[tuple]:
        """(id, provider id, ticket, kind) of pending items of these providers, oldest first."""
        rows = self.session.execute(
            select(orm.InboundItem.id, orm.InboundItem.provider_id, orm.InboundItem.ticket_ref,
                   orm.InboundItem.kind)
            .where(orm.InboundItem.status == PENDING,
                   orm.InboundItem.provider_id.in_(provider_ids))
            .order_by(orm.InboundItem.id).limit(limit))
        return [tuple(row) for row in rows]

    def item_counts(self, provider_id: int) -> dict[str, int]:
        rows = self.session.execute(
            select(orm.InboundItem.status, func.count()).where(
                orm.InboundItem.provider_id == provider_id).group_by(orm.InboundItem.status))
        return {status: count for status, count in rows}

    def failed_items(self, provider_id: int, limit: int = 50) -> Sequence[orm.InboundItem]:
        return self.session.scalars(select(orm.InboundItem).where(
            orm.InboundItem.provider_id == provider_id, orm.InboundItem.status == "error")
            .order_by(orm.InboundItem.id.desc()).limit(limit)).all()

    # -- provider tickets linked to tasks
    def provider_ticket(self, provider_id: int, external_id: str) -> orm.ProviderTicket | None:
        return self.session.scalar(select(orm.ProviderTicket).where(
            orm.ProviderTicket.provider_id == provider_id,
            orm.ProviderTicket.external_id == external_id))

    def provider_ticket_of_task(self, provider_id: int, task_id: int
                                ) -> orm.ProviderTicket | None:
        return self.session.scalar(select(orm.ProviderTicket).where(
            orm.ProviderTicket.provider_id == provider_id,
            orm.ProviderTicket.task_id == task_id).limit(1))

    def tickets_of_task(self, task_id: int) -> Sequence[orm.ProviderTicket]:
        return self.session.scalars(select(orm.ProviderTicket).where(
            orm.ProviderTicket.task_id == task_id).order_by(orm.ProviderTicket.id)).all()

    def open_linked_tickets(self, provider_id: int) -> Sequence[orm.ProviderTicket]:
        """Linked tickets whose task is open."""
        return self.session.scalars(
            select(orm.ProviderTicket)
            .join(orm.Task, orm.Task.id == orm.ProviderTicket.task_id)
            .where(orm.ProviderTicket.provider_id == provider_id,
                   orm.ProviderTicket.linked.is_(True), orm.Task.status == "open")
            .order_by(orm.ProviderTicket.id)).all()

    # -- the link manager
    def unlink_customer(self, provider_id: int, customer_id: int) -> dict[str, int]:
        """Unlinks a customer's assets (devices) and tickets from one provider -> counts."""
        assets = select(orm.Asset.id).where(orm.Asset.customer_id == customer_id)
        devices = self.session.execute(
            update(orm.ProviderDevice).where(orm.ProviderDevice.provider_id == provider_id,
                                             orm.ProviderDevice.asset_id.in_(assets))
            .values(asset_id=None).execution_options(synchronize_session=False)).rowcount
        tasks = (select(orm.Task.id).join(orm.Ticket, orm.Ticket.id == orm.Task.ticket_id)
                 .where(orm.Ticket.customer_id == customer_id))
        tickets = self.session.execute(
            update(orm.ProviderTicket).where(orm.ProviderTicket.provider_id == provider_id,
                                             orm.ProviderTicket.linked.is_(True),
                                             orm.ProviderTicket.task_id.in_(tasks))
            .values(linked=False).execution_options(synchronize_session=False)).rowcount
        return {"assets": devices, "tickets": tickets}

    def all_assets(self, limit: int = 5000) -> Sequence[orm.Asset]:
        return self.session.scalars(select(orm.Asset).order_by(orm.Asset.id).limit(limit)).all()

    def upsert_site(self, provider_id: int, external_id: str, name: str, details: dict,
                    now: datetime, known_absent: bool = False) -> orm.ProviderSite:
        site = None if known_absent else self.session.scalar(select(orm.ProviderSite).where(
            orm.ProviderSite.provider_id == provider_id,
            orm.ProviderSite.external_id == external_id))
        if site is None:
            site = orm.ProviderSite(provider_id=provider_id, external_id=external_id, name=name,
                                    details=details, seen_at=now)
            self.session.add(site)
            self.session.flush()
        else:
            site.name, site.details, site.seen_at = name, details, now
        return site

    def upsert_device(self, provider_id: int, external_id: str, values: dict,
                      now: datetime, known_absent: bool = False) -> orm.ProviderDevice:
        device = None if known_absent else self.session.scalar(select(orm.ProviderDevice).where(
            orm.ProviderDevice.provider_id == provider_id,
            orm.ProviderDevice.external_id == external_id))
        if device is None:
            device = orm.ProviderDevice(provider_id=provider_id, external_id=external_id,
                                        seen_at=now, **values)
            self.session.add(device)
            self.session.flush()
        else:
            for key, value in values.items():
                setattr(device, key, value)
            device.seen_at = now
        return device

    # -- scheduled jobs (see engine.services.schedule)
    def job_due_now(self, name: str, now: datetime) -> None:
        """Makes a job due now, in the caller's transaction (no row yet: it runs first anyway)."""
        self.session.execute(update(orm.ScheduledJob).where(
            orm.ScheduledJob.name == name, orm.ScheduledJob.due_at > now).values(due_at=now))

    def items(self, provider_id: int, status: str | None, limit: int
              ) -> Sequence[orm.InboundItem]:
        query = select(orm.InboundItem).where(orm.InboundItem.provider_id == provider_id)
        if status:
            query = query.where(orm.InboundItem.status == status)
        return self.session.scalars(query.order_by(orm.InboundItem.id.desc()).limit(limit)).all()

    def provider_tickets_by_refs(self, provider_id: int, refs: Sequence[str]
                                 ) -> Sequence[orm.ProviderTicket]:
        if not refs:
            return []
        return self.session.scalars(select(orm.ProviderTicket).where(
            orm.ProviderTicket.provider_id == provider_id,
            orm.ProviderTicket.external_id.in_(list(refs)))).all()

    def remember_ticket(self, provider_id: int, external_id: str, seen, our_task: int | None,
                        known: dict[str, orm.ProviderTicket] | None = None) -> None:
        """Records what the poller saw of a ticket; a ticket we created (`our_task`) is linked
        to its task, taking over the link made while its creation was on its way. `known`:
        the provider's rows of these tickets (and of `task:<id>` for ours), read beforehand
        with `provider_tickets_by_refs`; rows added here join it."""
        def find(ref: str) -> orm.ProviderTicket | None:
            return known.get(ref) if known is not None else self.provider_ticket(provider_id,
                                                                                 ref)

        row = find(external_id)
        if row is None and our_task is not None:
            row = find(f"task:{our_task}")
            if row is not None:
                row.external_id = external_id
        if row is None:
            exists = our_task is not None and self.session.get(orm.Task, our_task) is not None
            row = orm.ProviderTicket(provider_id=provider_id, external_id=external_id,
                                     task_id=our_task if exists else None,
                                     origin="ours" if our_task else "provider", linked=True,
                                     closed=False, last_note_id=0)
            self.session.add(row)
        if known is not None:
            known[external_id] = row
        row.status = (seen.status or "")[:120] or row.status
        row.last_note_id = max(row.last_note_id or 0, seen.last_note_id)
        row.closed = seen.closed

    def notes_we_wrote(self, provider_id: int, note_ids: Sequence[int]) -> set[int]:
        """Which of these notes on the provider's tickets we wrote ourselves: the note ids
        come back in the results of our Out exchanges to that provider."""
        if not note_ids:
            return set()
        note_id = orm.Exchange.result["note_id"].as_integer()
        return set(self.session.scalars(select(note_id).where(
            orm.Exchange.provider_id == provider_id, orm.Exchange.direction == "Out",
            note_id.in_(list(note_ids)))))
