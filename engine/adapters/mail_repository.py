"""Queries of the e-mail channel: the inbound mail table, rules and IMAP positions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, defer

from engine.adapters import orm
from engine.exceptions import NotFound

FINISHED = ("applied", "rejected", "skipped", "failed")


@functools.cache
def _upsert(dialect: str):
    """Built once per dialect: intake is the hot path, and building it costs more than
    running it (`excluded` copies every column)."""
    table = orm.MailMessage.__table__
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.dedupe_key],
        set_={"repeats": table.c.repeats + 1, "last_seen_at": statement.excluded.received_at},
    ).returning(table.c.id, table.c.repeats)


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
        statement = _upsert(self.session.get_bind().dialect.name)
        inbox_id, repeats = self.session.connection().execute(statement, values).one()
        return inbox_id, repeats > 0

    def message(self, message_id: int) -> orm.MailMessage:
        row = self.session.get(orm.MailMessage, message_id)
        if row is None:
            raise NotFound(f"inbound mail {message_id} not found")
        return row

    def pending_mail(self, limit: int) -> list[tuple[int, bytes, str | None]]:
        """(id, raw, envelope sender) of the oldest pending mails."""
        table = orm.MailMessage
        return [tuple(row) for row in self.session.execute(
            select(table.id, table.raw, table.envelope_from)
            .where(table.status == "pending").order_by(table.id).limit(limit))]

    def claim_pending(self, ids: list[int], skip_locked: bool = True) -> dict[int, orm.MailMessage]:
        """The mails among `ids` that are still pending, locked until this transaction ends
        (their raw bytes are not loaded again). On PostgreSQL a mail another worker holds is
        skipped, or waited for with `skip_locked=False`; SQLite's units of work already hold
        its write lock. A worker that waited finds the mail no longer pending."""
        query = (select(orm.MailMessage).options(defer(orm.MailMessage.raw))
                 .where(orm.MailMessage.id.in_(ids), orm.MailMessage.status == "pending")
                 .order_by(orm.MailMessage.id))
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=skip_locked)
        return {row.id: row for row in self.session.scalars(query)}

    def first_processed(self, message_ids: Sequence[str]) -> dict[str, int]:
        """Message-ID -> the first mail with it that was already processed (in any order)."""
        table = orm.MailMessage
        return dict(self.session.execute(
            select(table.message_id, func.min(table.id))
            .where(table.message_id.in_(set(message_ids)), table.status.in_(FINISHED))
            .group_by(table.message_id)).all())

    def count_by_sender(self, senders: Sequence[str], since: datetime,
                        before_id: int) -> dict[str, int]:
        """Sender -> how many of its mails before `before_id` arrived since `since`
        (repeats of one mail not counted)."""
        table = orm.MailMessage
        return dict(self.session.execute(
            select(table.sender, func.count())
            .where(table.sender.in_(set(senders)), table.received_at >= since,
                   table.id < before_id, table.status != "duplicate")
            .group_by(table.sender)).all())

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
