"""Queries of the e-mail channel: the inbound mail table, rules and IMAP positions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.adapters import orm
from engine.exceptions import NotFound

FINISHED = ("applied", "rejected", "skipped", "failed")


class MailRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- inbound mail
    def add(self, obj) -> None:
        self.session.add(obj)

    def store(self, **values) -> tuple[int, bool]:
        """Inserts one inbound mail, or counts a repeat of the one with its `dedupe_key`:
        one statement (INSERT … ON CONFLICT DO UPDATE), so racing intakes on PostgreSQL
        queue on the unique index instead of both inserting. -> (id, is a repeat)."""
        table = orm.MailMessage.__table__
        dialect = self.session.get_bind().dialect.name
        insert_of = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert_of(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.dedupe_key],
            set_={"repeats": table.c.repeats + 1,
                  "last_seen_at": statement.excluded.received_at},
        ).returning(table.c.id, table.c.repeats)
        inbox_id, repeats = self.session.connection().execute(statement).one()
        return inbox_id, repeats > 0

    def message(self, message_id: int) -> orm.MailMessage:
        row = self.session.get(orm.MailMessage, message_id)
        if row is None:
            raise NotFound(f"inbound mail {message_id} not found")
        return row

    def pending_ids(self, limit: int) -> list[int]:
        return list(self.session.scalars(
            select(orm.MailMessage.id).where(orm.MailMessage.status == "pending")
            .order_by(orm.MailMessage.id).limit(limit)))

    def claim(self, message_id: int) -> bool:
        """Takes a pending mail for this transaction. A concurrent worker blocks on the row
        and, once this transaction commits, finds it no longer pending."""
        result = self.session.execute(
            update(orm.MailMessage)
            .where(orm.MailMessage.id == message_id, orm.MailMessage.status == "pending")
            .values(attempts=orm.MailMessage.attempts + 1))
        return result.rowcount == 1

    def processed_with_message_id(self, message_id: str,
                                  other_than: int) -> orm.MailMessage | None:
        """Another mail with this Message-ID that was already processed (in any order)."""
        return self.session.scalar(
            select(orm.MailMessage)
            .where(orm.MailMessage.message_id == message_id, orm.MailMessage.id != other_than,
                   orm.MailMessage.status.in_(FINISHED))
            .order_by(orm.MailMessage.id).limit(1))

    def count_from_sender(self, sender: str, since: datetime, before_id: int) -> int:
        return self.session.scalar(
            select(func.count()).select_from(orm.MailMessage)
            .where(orm.MailMessage.sender == sender, orm.MailMessage.received_at >= since,
                   orm.MailMessage.id < before_id,
                   orm.MailMessage.status != "duplicate")) or 0

    def messages(self, status: str | None = None, limit: int = 100,
                 offset: int = 0) -> Sequence[orm.MailMessage]:
        query = select(orm.MailMessage)
        if status:
            query = query.where(orm.MailMessage.status == status)
        return self.session.scalars(
            query.order_by(orm.MailMessage.id.desc()).offset(offset).limit(limit)).all()

    # -- automated e-mail rules
    def rules(self, enabled_only: bool = False) -> Sequence[orm.MailRule]:
        query = select(orm.MailRule)
        if enabled_only:
            query = query.where(orm.MailRule.enabled.is_(True))
        # unique(): a rule's group is joined, and may bring joined collections with it
        return self.session.scalars(query.order_by(orm.MailRule.position,
                                                   orm.MailRule.id)).unique().all()

    def rule(self, rule_id: int) -> orm.MailRule:
        rule = self.session.get(orm.MailRule, rule_id)
        if rule is None:
            raise NotFound(f"mail rule {rule_id} not found")
        return rule

    def delete(self, obj) -> None:
        self.session.delete(obj)

    # -- IMAP
    def imap_mailbox(self, mailbox: str) -> orm.ImapMailbox | None:
        return self.session.get(orm.ImapMailbox, mailbox)
