"""Every query the services need, in one place (the only SQL besides migrations)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from engine.adapters import orm
from engine.adapters.repositories_ops import OpsRepository
from engine.adapters.repositories_outbox import OutboxRepository
from engine.adapters.repositories_processes import ProcessRepository
from engine.adapters.repositories_rows import RowRepository
from engine.adapters.repositories_sla import SlaRepository
from engine.adapters.repositories_tasks import TaskRowRepository
from engine.adapters.repositories_work import WorkRepository
from engine.exceptions import NotFound, TaskNotFound

_GROUP_BY_NAME = select(orm.Group).where(orm.Group.name == bindparam("name"))
_TICKET = select(orm.Ticket).where(orm.Ticket.id == bindparam("id"))
_TASK = select(orm.Task).where(orm.Task.id == bindparam("id"))  # with ticket, group, provider
_RESULT_BY_KEY = select(orm.Exchange.__table__.c.result).where(
    orm.Exchange.__table__.c.provider_id == bindparam("provider_id"),
    orm.Exchange.__table__.c.idempotency_key == bindparam("key"))


# queries of one area live in a mixin of their own
class Repository(RowRepository, ProcessRepository, SlaRepository, OpsRepository,
                 WorkRepository, OutboxRepository, TaskRowRepository):
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj) -> None:
        self.session.add(obj)

    def flush(self) -> None:
        """Writes what the unit of work changed so far (task rows included) without
        committing: a use case run in a shared transaction ends here."""
        self.write_task_rows()
        self.session.flush()

    # -- users and tokens
    def user_by_name(self, name: str) -> orm.User | None:
        return self.session.scalar(select(orm.User).where(orm.User.name == name))

    def user_by_id(self, user_id: int) -> orm.User | None:
        return self.session.get(orm.User, user_id)

    def users(self) -> Sequence[orm.User]:
        return self.session.scalars(select(orm.User).order_by(orm.User.name)).all()

    def token(self, token_hash: str) -> orm.ApiToken | None:
        return self.session.scalar(select(orm.ApiToken).where(orm.ApiToken.token_hash == token_hash))

    def group_ids_of_user(self, user_id: int) -> set[int]:
        rows = self.session.scalars(
            select(orm.GroupMember.group_id).where(orm.GroupMember.user_id == user_id))
        return set(rows)

    def members_of(self, group_id: int) -> Sequence[orm.User]:
        return self.session.scalars(
            select(orm.User).join(orm.GroupMember, orm.GroupMember.user_id == orm.User.id)
            .where(orm.GroupMember.group_id == group_id).order_by(orm.User.name)).all()

    def set_members(self, group_id: int, user_ids: set[int]) -> None:
        self.session.execute(delete(orm.GroupMember).where(orm.GroupMember.group_id == group_id))
        for user_id in sorted(user_ids):
            self.session.add(orm.GroupMember(group_id=group_id, user_id=user_id))

    # -- providers and groups
    def provider(self, provider_id: int) -> orm.Provider:
        provider = self.session.get(orm.Provider, provider_id)
        if provider is None:
            raise NotFound(f"provider {provider_id} not found")
        return provider

    def provider_by_name(self, name: str) -> orm.Provider | None:
        return self.session.scalar(select(orm.Provider).where(orm.Provider.name == name))

    def provider_by_username(self, username: str) -> orm.Provider | None:
        return self.session.scalar(select(orm.Provider).where(orm.Provider.username == username))

    def provider_by_email(self, address: str) -> orm.Provider | None:
        return self.session.scalar(
            select(orm.Provider).where(func.lower(orm.Provider.email) == address.lower()))

    def providers(self) -> Sequence[orm.Provider]:
        return self.session.scalars(select(orm.Provider).order_by(orm.Provider.name)).all()

    def group_by_name(self, name: str) -> orm.Group | None:
        """The group with its provider and process bindings, in one statement."""
        return self.session.scalars(_GROUP_BY_NAME, {"name": name}).unique().first()

    def groups(self) -> Sequence[orm.Group]:
        return self.session.scalars(select(orm.Group).order_by(orm.Group.name)).unique().all()

    # -- tickets and tasks
    def ticket(self, ticket_id: int) -> orm.Ticket:
        ticket = self.session.scalars(_TICKET, {"id": ticket_id}).first()
        if ticket is None:
            raise NotFound(f"ticket {ticket_id} not found")
        return ticket

    def insert_task(self, ticket: orm.Ticket, group: orm.Group | None, **values) -> orm.Task:
        """Adds a task with one INSERT; returns it as a persistent ORM object, as if just
        loaded (what changes later is flushed as an UPDATE with the version check)."""
        now = orm.utcnow()
        row = {"ticket_id": ticket.id, "group_id": group.id if group else None,
               "status": "open", "external_reference": None, "solution": None,
               "solution_pending": False, "description": "", "priority": "normal",
               "version": 1, "created_at": now, "updated_at": now, **values}
        task = orm.Task(id=self._insert(orm.Task, row), **row)
        task.ticket, task.group = ticket, group
        make_transient_to_detached(task)
        self.session.add(task)
        return task

    def task(self, task_id: int) -> orm.Task:
        task = self.session.scalars(_TASK, {"id": task_id}).unique().first()
        if task is None:
            raise TaskNotFound(f"task {task_id} not found")
        return task

    def task_for_update(self, task_id: int) -> orm.Task:
        """The task, locked until commit: writers of one task queue instead of racing.

        PostgreSQL takes a row lock (`FOR UPDATE OF tasks`) and waits for it at most the
        unit of work's `lock_timeout` seconds (past it: lock-not-available, answered `Busy`);
        SQLite's units of work already hold the database's write lock from BEGIN IMMEDIATE.
        The version column still guards against anything that slips past (optimistic locking).
        """
        if self.session.bind.dialect.name != "postgresql":
            return self.task(task_id)
        self._bound_lock_wait()
        task = self._locked_task(task_id, skip_locked=False)
        if task is None:
            raise TaskNotFound(f"task {task_id} not found")
        return task

    def task_unless_locked(self, task_id: int) -> orm.Task | None:
        """The task locked like `task_for_update`, or None (at once) while another writer
        holds it: for background work that can come back to it on its next pass."""
        if self.session.bind.dialect.name != "postgresql":
            return self.session.get(orm.Task, task_id)
        return self._locked_task(task_id, skip_locked=True)

    def _locked_task(self, task_id: int, skip_locked: bool) -> orm.Task | None:
        return self.session.scalars(
            select(orm.Task).where(orm.Task.id == task_id)
            .with_for_update(of=orm.Task, skip_locked=skip_locked)
            .execution_options(populate_existing=True)).first()

    def _bound_lock_wait(self) -> None:
        """SET LOCAL lock_timeout, once per transaction."""
        info = self.session.info
        transaction = self.session.get_transaction()
        if transaction is not None and info.get("lock_timeout_of") is transaction:
            return
        milliseconds = max(1, int(info.get("lock_timeout", 5.0) * 1000))
        self.session.execute(select(func.set_config("lock_timeout", str(milliseconds), True)))
        info["lock_timeout_of"] = self.session.get_transaction()

    def tasks(self, *, group_ids: set[int] | None = None, status: str | None = None,
              search: str | None = None, offset: int = 0, limit: int = 50
              ) -> tuple[Sequence[orm.Task], int]:
        query = select(orm.Task)
        if group_ids is not None:
            query = query.where(orm.Task.group_id.in_(group_ids))
        if status:
            query = query.where(orm.Task.status == status)
        if search:
            like = f"%{search.lower()}%"
            query = query.where(or_(func.lower(orm.Task.title).like(like),
                                    func.lower(orm.Task.external_reference).like(like)))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(orm.Task.id.desc()).offset(offset).limit(limit))
        return rows.unique().all(), total

    def notes(self, task_id: int) -> Sequence[orm.TaskNote]:
        return self.session.scalars(select(orm.TaskNote).where(orm.TaskNote.task_id == task_id)
                                    .order_by(orm.TaskNote.id)).all()

    # -- customers, assets, provider sites and devices ---------------------------------------
    def customer(self, customer_id: int) -> orm.Customer:
        customer = self.session.get(orm.Customer, customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer

    def customer_by_name(self, name: str) -> orm.Customer | None:
        """The customer of that name, the exact spelling first, else ignoring case."""
        return self.session.scalar(
            select(orm.Customer)
            .where(or_(orm.Customer.name == name, func.lower(orm.Customer.name) == name.lower()))
            .order_by(case((orm.Customer.name == name, 0), else_=1), orm.Customer.id).limit(1))

    def customer_named(self, name: str) -> orm.Customer:
        """The customer of that name, created when unknown. Two writers creating one name at
        once (PostgreSQL): the loser's savepoint rolls back and it finds the winner's row."""
        existing = self.customer_by_name(name)
        if existing is not None:
            return existing
        customer = self.new_customer(name)
        if customer is None:
            customer = self.customer_by_name(name)
            if customer is None:
                raise LookupError(f"customer {name!r} vanished while it was being created")
        return customer

    def new_customer(self, name: str, notes: str = "") -> orm.Customer | None:
        """A new customer of that name, or None when another writer has just created one of
        that name (its savepoint rolls back; the transaction goes on)."""
        if self.session.get_bind().dialect.name == "postgresql":
            # The unique index compares exact names; names are unique whatever their case, so
            # creators of one name (any case) take turns, and the second sees the first's row.
            key = int.from_bytes(hashlib.blake2b(name.lower().encode(), digest_size=8).digest(),
                                 "big", signed=True)
            self.session.execute(select(func.pg_advisory_xact_lock(key)))
            if self.customer_by_name(name) is not None:
                return None
        try:
            with self.session.begin_nested():
                customer = orm.Customer(name=name, own=False, notes=notes)
                self.session.add(customer)
            return customer
        except IntegrityError:
            return None

    def own_customer(self) -> orm.Customer | None:
        return self.session.scalar(select(orm.Customer).where(orm.Customer.own.is_(True)))

    def give_tickets_without_customer_to(self, customer_id: int) -> int:
        """Tickets stored with no customer (before our own business existed, or before a
        ticket without one named it) become `customer_id`'s; an indexed look-up when none."""
        return self.session.execute(
            update(orm.Ticket).where(orm.Ticket.customer_id.is_(None))
            .values(customer_id=customer_id).execution_options(synchronize_session=False)
        ).rowcount

    def customers(self, search: str | None = None, limit: int = 500) -> Sequence[orm.Customer]:
        query = select(orm.Customer)
        if search:
            query = query.where(func.lower(orm.Customer.name).contains(search.lower(),
                                                                      autoescape=True))
        return self.session.scalars(
            query.order_by(orm.Customer.own.desc(), orm.Customer.name).limit(limit)).all()

    def asset_counts(self, customer_ids: Sequence[int]) -> dict[int, int]:
        rows = self.session.execute(
            select(orm.Asset.customer_id, func.count()).where(
                orm.Asset.customer_id.in_(customer_ids)).group_by(orm.Asset.customer_id))
        return {customer_id: count for customer_id, count in rows}

    def asset(self, customer_id: int, asset_id: int) -> orm.Asset:
        asset = self.session.get(orm.Asset, asset_id)
        if asset is None or asset.customer_id != customer_id:
            raise NotFound(f"asset {asset_id} of customer {customer_id} not found")
        return asset

    def assets_of(self, customer_id: int) -> Sequence[orm.Asset]:
        return self.session.scalars(select(orm.Asset).where(orm.Asset.customer_id == customer_id)
                                    .order_by(orm.Asset.name, orm.Asset.id)).all()

    def delete(self, row) -> None:
        self.session.delete(row)

    def move_customer(self, from_id: int, to_id: int) -> dict[str, int]:
        """Moves tickets, assets and site links of one customer to another -> counts moved."""
        moved = {}
        for name, table in (("tickets", orm.Ticket), ("assets", orm.Asset),
                            ("sites", orm.ProviderSite)):
            result = self.session.execute(update(table).where(table.customer_id == from_id)
                                          .values(customer_id=to_id))
            moved[name] = result.rowcount
        return moved

    def provider_site(self, provider_id: int, external_id: str) -> orm.ProviderSite | None:
        return self.session.scalar(select(orm.ProviderSite).where(
            orm.ProviderSite.provider_id == provider_id,
            orm.ProviderSite.external_id == external_id))

    def provider_sites(self, provider_id: int) -> Sequence[orm.ProviderSite]:
        return self.session.scalars(select(orm.ProviderSite).where(
            orm.ProviderSite.provider_id == provider_id).order_by(orm.ProviderSite.name)).all()

    def sites_of_customer(self, customer_id: int) -> Sequence[orm.ProviderSite]:
        return self.session.scalars(select(orm.ProviderSite).where(
            orm.ProviderSite.customer_id == customer_id).order_by(orm.ProviderSite.id)).all()

    def provider_device(self, provider_id: int, external_id: str) -> orm.ProviderDevice | None:
        return self.session.scalar(select(orm.ProviderDevice).where(
            orm.ProviderDevice.provider_id == provider_id,
            orm.ProviderDevice.external_id == external_id))

    def provider_devices(self, provider_id: int) -> Sequence[orm.ProviderDevice]:
        return self.session.scalars(select(orm.ProviderDevice).where(
            orm.ProviderDevice.provider_id == provider_id).order_by(orm.ProviderDevice.name)).all()

    # -- end of customers, assets, provider sites and devices ---------------------------------

    # -- exchanges and outbox
    def exchange(self, exchange_id: int) -> orm.Exchange:
        exchange = self.session.get(orm.Exchange, exchange_id)
        if exchange is None:
            raise NotFound(f"exchange {exchange_id} not found")
        return exchange

    def exchange_result_by_key(self, provider_id: int, key: str) -> dict | None:
        """The answer given to an earlier request with this idempotency key, if any."""
        return self._execute(_RESULT_BY_KEY, {"provider_id": provider_id, "key": key}).scalar()

    def exchange_by_key(self, provider_id: int, key: str) -> orm.Exchange | None:
        return self.session.scalar(select(orm.Exchange).where(
            orm.Exchange.provider_id == provider_id, orm.Exchange.idempotency_key == key))

    def exchanges(self, *, task_id: int | None = None, filters: dict | None = None,
                  limit: int = 200, offset: int = 0) -> Sequence[orm.Exchange]:
        query = select(orm.Exchange)
        if task_id is not None:
            query = query.where(orm.Exchange.task_id == task_id)
        for name, value in (filters or {}).items():
            if value in (None, ""):
                continue
            if name == "since":
                query = query.where(orm.Exchange.created_at >= value)
            elif name == "until":
                query = query.where(orm.Exchange.created_at <= value)
            else:
                query = query.where(getattr(orm.Exchange, name) == value)
        order = orm.Exchange.id if task_id is not None else orm.Exchange.id.desc()
        return self.session.scalars(query.order_by(order).offset(offset).limit(limit)).all()

    def outbox_for_exchange(self, exchange_id: int) -> orm.OutboxItem | None:
        return self.session.scalar(select(orm.OutboxItem).where(
            orm.OutboxItem.exchange_id == exchange_id).order_by(orm.OutboxItem.id.desc()).limit(1))

    def outbox_item(self, item_id: int) -> orm.OutboxItem | None:
        return self.session.get(orm.OutboxItem, item_id)

    # -- scheduled jobs
    def ensure_jobs(self, names: Sequence[str], due_at: dict[str, datetime]) -> None:
        """Creates the rows of jobs never run here before (concurrent workers may race: the
        primary key keeps one)."""
        known = set(self.session.scalars(select(orm.ScheduledJob.name)
                                         .where(orm.ScheduledJob.name.in_(names))))
        for name in names:
            if name not in known:
                try:
                    with self.session.begin_nested():
                        self.session.add(orm.ScheduledJob(name=name, due_at=due_at[name],
                                                          runs=0, last_result={}))
                except IntegrityError:  # another worker created it meanwhile: keep theirs
                    continue

    @staticmethod
    def _job_claimable(now: datetime):
        # Due, or a run whose worker died (its lease ran out unfinished): that run is owed.
        return (or_(orm.ScheduledJob.due_at <= now, orm.ScheduledJob.lease_by.is_not(None)),
                or_(orm.ScheduledJob.lease_until.is_(None), orm.ScheduledJob.lease_until < now))

    def due_job_names(self, now: datetime) -> list[str]:
        return list(self.session.scalars(
            select(orm.ScheduledJob.name).where(*self._job_claimable(now))
            .order_by(orm.ScheduledJob.due_at)))

    def lease_job(self, name: str, worker: str, now: datetime, lease: timedelta,
                  next_due: datetime) -> bool:
        """Compare-and-set, like the outbox: one worker of many runs a due job, and its next
        due time is set as it starts (a run asked for meanwhile makes it due again)."""
        result = self.session.execute(
            update(orm.ScheduledJob)
            .where(orm.ScheduledJob.name == name, *self._job_claimable(now))
            .values(lease_by=worker, lease_until=now + lease, last_started_at=now,
                    due_at=next_due))
        return result.rowcount == 1

    def scheduled_job(self, name: str) -> orm.ScheduledJob | None:
        return self.session.get(orm.ScheduledJob, name)

    def scheduled_jobs(self) -> Sequence[orm.ScheduledJob]:
        return self.session.scalars(select(orm.ScheduledJob).order_by(orm.ScheduledJob.name)).all()

    # == ConnectWise (PSA) channel: connections, settings, mappings, look-ups, sync runs ==
    def connectwise_providers(self) -> Sequence[orm.Provider]:
        return self.session.scalars(select(orm.Provider).where(
            orm.Provider.channel == "connectwise").order_by(orm.Provider.id)).all()

    def psa_connection(self, provider_id: int) -> orm.PsaConnection | None:
        return self.session.get(orm.PsaConnection, provider_id)

    def psa_connections(self) -> Sequence[orm.PsaConnection]:
        return self.session.scalars(select(orm.PsaConnection)).all()

    def psa_settings(self, provider_id: int) -> orm.PsaSettings | None:
        return self.session.get(orm.PsaSettings, provider_id)

    def psa_mappings(self, provider_id: int, kind: str | None = None) -> Sequence[orm.PsaMapping]:
        query = select(orm.PsaMapping).where(orm.PsaMapping.provider_id == provider_id)
        if kind is not None:
            query = query.where(orm.PsaMapping.kind == kind)
        return self.session.scalars(query.order_by(orm.PsaMapping.kind, orm.PsaMapping.ours)).all()

    def psa_lookups(self, provider_id: int, kinds: Sequence[str] | None = None
                    ) -> Sequence[orm.PsaLookup]:
        query = select(orm.PsaLookup).where(orm.PsaLookup.provider_id == provider_id)
        if kinds is not None:
            query = query.where(orm.PsaLookup.kind.in_(kinds))
        return self.session.scalars(query).all()

    def replace_psa_lookups(self, provider_id: int, rows: list[dict]) -> None:
        self.session.execute(delete(orm.PsaLookup).where(orm.PsaLookup.provider_id == provider_id))
        for row in rows:
            self.session.add(orm.PsaLookup(provider_id=provider_id, **row))

    def insert_psa_sync_run(self, **values) -> int:
        """Records one agreement sync -> its id."""
        return self._insert(orm.PsaSyncRun, values)

    def psa_sync_runs(self, provider_id: int, limit: int = 10) -> Sequence[orm.PsaSyncRun]:
        return self.session.scalars(select(orm.PsaSyncRun).where(
            orm.PsaSyncRun.provider_id == provider_id)
            .order_by(orm.PsaSyncRun.id.desc()).limit(limit)).all()

    def psa_customer_settings(self, provider_id: int, customer_id: int
                              ) -> orm.PsaCustomerSettings | None:
        return self.session.get(orm.PsaCustomerSettings, (provider_id, customer_id))

    def psa_customer_settings_of(self, provider_id: int) -> Sequence[orm.PsaCustomerSettings]:
        return self.session.scalars(select(orm.PsaCustomerSettings).where(
            orm.PsaCustomerSettings.provider_id == provider_id)).all()

    def first_site_of(self, provider_id: int, customer_id: int) -> orm.ProviderSite | None:
        """The site of a provider linked to a customer (the first when several are)."""
        return self.session.scalars(select(orm.ProviderSite).where(
            orm.ProviderSite.provider_id == provider_id,
            orm.ProviderSite.customer_id == customer_id).order_by(orm.ProviderSite.id)
            .limit(1)).first()

    def asset_type_counts(self, customer_id: int) -> dict[str, int]:
        """How many assets of each type (lower-cased) a customer has."""
        rows = self.session.execute(
            select(func.lower(orm.Asset.type), func.count()).where(
                orm.Asset.customer_id == customer_id, orm.Asset.type.is_not(None))
            .group_by(func.lower(orm.Asset.type)))
        return {kind: count for kind, count in rows}
