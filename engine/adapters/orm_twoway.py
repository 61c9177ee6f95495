"""Tables of the two-way link with a provider: its inbound switch and callback key, the durable
inbound queue, and the provider's tickets as they were last seen (CONTRACT §7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from engine.adapters.orm import Base, Group, Provider, utcnow


class ProviderInbound(Base):
    """What a provider may send us: off (`enabled` false) until an admin or integration manager
    switches it on; the group whose inbox receives the tickets it opens; the key of its
    callback URL; where its poller stands."""

    __tablename__ = "provider_inbound"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    callback_key: Mapped[str] = mapped_column(String(64), unique=True)
    poll_cursor: Mapped[datetime | None]  # the provider's lastUpdated of the newest change seen
    own_member: Mapped[str | None] = mapped_column(String(100))  # who we are on its side
    callback_id: Mapped[int | None] = mapped_column(Integer)  # its /system/callbacks record
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    group: Mapped[Group | None] = relationship(lazy="joined")
    provider: Mapped[Provider] = relationship(
        backref=backref("inbound", uselist=False, lazy="select", cascade="all, delete-orphan"))


class InboundItem(Base):
    """One change a provider made (a ticket it opened, a note, a status), kept until applied.
    Idempotent by (provider, ticket, change); applied in id order per ticket."""

    __tablename__ = "inbound_items"
    __table_args__ = (
        UniqueConstraint("provider_id", "ticket_ref", "change_key", name="uq_inbound_item"),
        Index("ix_inbound_items_status", "status", "provider_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    ticket_ref: Mapped[str] = mapped_column(String(100))
    change_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # new_ticket | note | status
    source: Mapped[str] = mapped_column(String(16))  # soap | poll | reconcile
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # done|skipped|error
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class ProviderTicket(Base):
    """A provider's ticket linked to one of our tasks, as last seen: its status and newest
    note, so that the poller turns only what changed into inbound items."""

    __tablename__ = "provider_tickets"
    __table_args__ = (UniqueConstraint("provider_id", "external_id", name="uq_provider_ticket"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(100))
    # None until the ticket's opening is applied (the poller remembers it from its first sight)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"),
                                                index=True)
    origin: Mapped[str] = mapped_column(String(16))  # provider | ours
    linked: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str | None] = mapped_column(String(120))
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_note_id: Mapped[int] = mapped_column(Integer, default=0)
    last_updated: Mapped[datetime | None]
