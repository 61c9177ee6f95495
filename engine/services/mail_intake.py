"""Inbound e-mail, durable intake (CONTRACT §5): the SMTP listener, the IMAP poller and
`liaison ingest-eml` only store the raw message here; the worker applies it later
(engine.services.mail). The sender gets its acknowledgement once the mail is committed."""

from __future__ import annotations

from pathlib import Path

from engine.adapters import orm
from engine.adapters.mail_parsing import identity_key
from engine.adapters.mail_repository import MailRepository
from engine.exceptions import LiaisonError, PayloadTooLarge
from engine.services.mail import process_message
from engine.services.mail_outcome import SharedTransaction, message_view


def receive(uow, raw: bytes, source: str, envelope_from: str | None = None,
            recipients: tuple[str, ...] = ()) -> int:
    """Stores one raw inbound mail for the worker and returns its id. Nothing else happens
    here, so the sender gets its acknowledgement as soon as the mail is safe on disk."""
    return store(uow, raw, source, envelope_from, recipients)[0]


def store(uow, raw: bytes, source: str, envelope_from: str | None = None,
          recipients: tuple[str, ...] = ()) -> tuple[int, bool]:
    """`receive`, saying also whether the mail was a repeat: the same Message-ID from the
    same sender, by any intake, is stored once and its repeats counted (CONTRACT §5)."""
    limit = uow.context.settings.mail_max_bytes
    if len(raw) > limit:
        raise PayloadTooLarge(f"the message has {len(raw)} bytes; the limit is {limit}")
    now = uow.context.clock.now()
    inbox_id, repeat = MailRepository(uow.session).store(
        source=source, raw=raw, size=len(raw), envelope_from=envelope_from,
        recipients=list(recipients), status="pending", attempts=0, received_at=now,
        dedupe_key=identity_key(raw), repeats=0)
    if not repeat:
        uow.after_commit.append(uow.context.work_available.set)
    uow.commit()
    return inbox_id, repeat


def record_oversized(uow, source: str, size: int, note: str) -> int:
    """Keeps a trace of a mail refused for its size (its content is not stored)."""
    row = orm.MailMessage(source=source, raw=b"", size=size, recipients=[], status="rejected",
                          attempts=0, outcome=f"larger than the limit of "
                          f"{uow.context.settings.mail_max_bytes} bytes ({note})",
                          received_at=uow.context.clock.now(),
                          processed_at=uow.context.clock.now())
    uow.session.add(row)
    uow.commit()
    return row.id


def imap_position(uow, mailbox: str, uidvalidity: int) -> int:
    """The last UID stored from an IMAP mailbox; a new UIDVALIDITY starts again from 0."""
    repo = MailRepository(uow.session)
    state = repo.imap_mailbox(mailbox)
    if state is None:
        state = orm.ImapMailbox(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=0)
        repo.add(state)
    elif state.uidvalidity != uidvalidity:
        state.uidvalidity, state.last_uid = uidvalidity, 0
    uow.commit()
    return state.last_uid


def receive_from_imap(uow, mailbox: str, uid: int, raw: bytes | None, size: int) -> int | None:
    """Stores one fetched message (None: too large, kept as a trace) and advances the
    mailbox position in the same transaction; None when that UID was stored already."""
    state = MailRepository(uow.session).imap_mailbox(mailbox)
    if state is None or state.last_uid >= uid:
        return None
    state.last_uid = uid
    shared = SharedTransaction(uow)
    inbox_id = receive(shared, raw, "imap") if raw is not None else \
        record_oversized(shared, "imap", size, f"IMAP UID {uid}")
    uow.commit()
    return inbox_id


def ingest_files(core, paths: list[Path]):
    """`liaison ingest-eml`: stores each file as inbound mail, processes it, yields a line."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise LiaisonError(f"{missing[0]}: no such file")
    for path in paths:
        try:
            inbox_id, repeat = core.run(store, path.read_bytes(), "file")
        except PayloadTooLarge as exc:
            yield f"{path}: rejected: {exc.message}"
            continue
        process_message(core, inbox_id)
        row = core.run(message_view, inbox_id)
        again = f" (a repeat of inbound mail {inbox_id}, seen {row['repeats'] + 1} times)" \
            if repeat else ""
        yield f"{path}: {row['status']}: {row['outcome']}{again}"
