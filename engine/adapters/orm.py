"""SQLAlchemy 2 models: the only place that describes tables. Alembic migrations mirror them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """Timestamps are UTC everywhere; SQLite forgets the zone, so it is put back on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user: Mapped[User] = relationship(lazy="joined")


class Provider(Base):
    __tablename__ = "providers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    endpoint_url: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(254))
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_salt: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    trust_sender: Mapped[bool] = mapped_column(Boolean, default=False)
    tag_labels: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    integrated: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    provider: Mapped[Provider | None] = relationship(lazy="joined")
    bindings: Mapped[list[ProcessBinding]] = relationship(
        lazy="joined", cascade="all, delete-orphan"
    )

    def process_for(self, binding_event: str) -> str | None:
        return next((b.process_id for b in self.bindings if b.event == binding_event), None)

    def binding_for(self, binding_event: str) -> ProcessBinding | None:
        return next((b for b in self.bindings if b.event == binding_event), None)


class ProcessBinding(Base):
    __tablename__ = "group_processes"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    event: Mapped[str] = mapped_column(String(40), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200))


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    # No customer: the ticket belongs to our own business.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    customer: Mapped[Customer | None] = relationship(lazy="joined")


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    external_reference: Mapped[str | None] = mapped_column(String(200))
    solution: Mapped[str | None] = mapped_column(Text)
    solution_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ticket: Mapped[Ticket] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")
    __mapper_args__ = {"version_id_col": version}


class TaskNote(Base):
    __tablename__ = "task_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="note")
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessModel(Base):
    __tablename__ = "process_models"
    __table_args__ = (UniqueConstraint("process_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300))
    bpmn_xml: Mapped[bytes] = mapped_column()
    checksum: Mapped[str] = mapped_column(String(64))
    forms: Mapped[dict] = mapped_column(JSON, default=dict)
    uploaded_by: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# A binding carries the id of its process's latest version, read in the same statement as the
# binding (which is read with its group, and a group with its task): starting a process needs
# no look-up of its own, and nothing is cached that another process's deploy could outdate.
ProcessBinding.latest_model_id = column_property(
    select(ProcessModel.id).where(ProcessModel.process_id == ProcessBinding.process_id)
    .order_by(ProcessModel.version.desc()).limit(1).correlate_except(ProcessModel)
    .scalar_subquery())


class ProcessInstance(Base):
    __tablename__ = "process_instances"
    __table_args__ = (Index("ix_instances_task_status", "task_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("process_models.id"))
    process_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(Text)
    waiting_messages: Mapped[str] = mapped_column(String(500), default="")
    current_steps: Mapped[list] = mapped_column(JSON, default=list)
    next_timer_at: Mapped[datetime | None] = mapped_column(index=True)
    error: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    model: Mapped[ProcessModel] = relationship(lazy="select")
    __mapper_args__ = {"version_id_col": version}


class Exchange(Base):
    __tablename__ = "exchanges"
    __table_args__ = (
        UniqueConstraint("provider_id", "idempotency_key", name="uq_exchange_idempotency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    request_type: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(4))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    provider: Mapped[Provider | None] = relationship(lazy="joined")


class OutboxItem(Base):
    """One outbound delivery, written in the same transaction as the state that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id"))
    channel: Mapped[str] = mapped_column(String(16))
    message: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WsNonce(Base):
    """WS-Security nonces seen recently: a nonce is accepted once, across restarts and workers."""

    __tablename__ = "ws_nonces"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ScheduledJob(Base):
    """A periodic job of the workers (polling, nightly runs, housekeeping): when it is next due
    and who runs it now. A lease makes one worker of many run it; a dead one's lease expires."""

    __tablename__ = "scheduled_jobs"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    lease_by: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None]
    runs: Mapped[int] = mapped_column(Integer, default=0)
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_result: Mapped[dict] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)


# Tables of one area live in a module of their own (orm_<area>.py) on the same Base; they are
# re-exported here so that `orm.<Table>` names every table and Alembic sees them all.
from engine.adapters.orm_connectwise import (  # noqa: E402, F401
    PsaConnection,
    PsaCustomerSettings,
    PsaLookup,
    PsaMapping,
    PsaSettings,
    PsaSyncRun,
)
from engine.adapters.orm_customers import (  # noqa: E402, F401
    Asset,
    Customer,
    ProviderDevice,
    ProviderSite,
)
from engine.adapters.orm_mail import ImapMailbox, MailMessage, MailRule  # noqa: E402, F401
from engine.adapters.orm_requests import IdempotencyRecord  # noqa: E402, F401
from engine.adapters.orm_sla import SlaBreach, SlaTarget  # noqa: E402, F401
from engine.adapters.orm_twoway import (  # noqa: E402, F401
    InboundItem,
    ProviderInbound,
    ProviderTicket,
)
