"""Tables of the e-mail channel: raw inbound mail, automated e-mail rules, IMAP positions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.adapters.orm import Base, Group, Provider, utcnow


class MailMessage(Base):
    """One inbound mail exactly as received (SMTP, IMAP or a file), stored before it is
    acknowledged to the sender and processed later by the worker. Stored once: a copy with
    the same Message-ID and sender (`dedupe_key`) counts as a repeat of the first."""

    __tablename__ = "mail_inbox"
    __table_args__ = (Index("ix_mail_inbox_status", "status", "id"),
                      Index("ix_mail_inbox_sender", "sender", "received_at"),
                      Index("ux_mail_inbox_dedupe_key", "dedupe_key", unique=True))
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # smtp | imap | file
    raw: Mapped[bytes] = mapped_column()
    size: Mapped[int] = mapped_column(Integer, default=0)
    envelope_from: Mapped[str | None] = mapped_column(String(300))  # "" is the null sender
    recipients: Mapped[list] = mapped_column(JSON, default=list)
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    sender: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(500))
    # pending | applied | rejected | skipped | duplicate | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("mail_rules.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    # sha256 of Message-ID and sender; NULL (never equal) for mail without a Message-ID
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_seen_at: Mapped[datetime | None]  # when the latest repeat arrived


class MailRule(Base):
    """An automated e-mail rule: ordered by position, the first that matches wins."""

    __tablename__ = "mail_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[list] = mapped_column(JSON, default=list)  # [{field, match, value}]
    action: Mapped[str] = mapped_column(String(20))  # detect | skip | assign_account
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id",
                                                               ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    account: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    provider: Mapped[Provider | None] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")


class ImapMailbox(Base):
    """How far the IMAP poller has read a mailbox: survives restarts, so nothing is re-applied."""

    __tablename__ = "mail_imap_state"
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
