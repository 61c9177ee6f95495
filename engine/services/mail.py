"""Inbound e-mail: durable intake and the worker's processing (CONTRACT §5).

Intake (SMTP listener, IMAP poller, `liaison ingest-eml`) only stores the raw message; the
worker then takes each stored mail in one transaction: loop guards (same Message-ID, our own
address, per-sender rate limit) → automated e-mail rules → auto-reply check → SOAP by e-mail
→ tags. Whatever is applied and the mail's outcome commit together, so a crash at any point
leaves the mail pending and it is applied exactly once when a worker runs again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from engine.adapters import orm
from engine.adapters.mail_intake import (
    ParsedMail,
    RegexGuard,
    SoapAnswer,
    SoapEndpoint,
    compose_soap_reply,
    parse_message,
)
from engine.adapters.mail_repository import MailRepository
from engine.adapters.smtp_listener import INTAKE, RawMailChannel
from engine.domain.events import Direction, ExchangeStatus
from engine.exceptions import ConcurrentUpdate, InvalidInput, LiaisonError, PayloadTooLarge
from engine.services import mail_rules
from engine.services.mail_rules import SharedTransaction, Trace, Verdict, apply_tags

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # an unexpected failure is retried, then the mail is marked failed
_guard: RegexGuard | None = None


def regex_guard() -> RegexGuard:
    global _guard  # one helper process per OS process, started on first use
    if _guard is None:
        _guard = RegexGuard()
    return _guard


@dataclass(frozen=True)
class MailOptions:
    """E-mail settings beyond engine.config's, read from LIAISON_* variables."""

    own_addresses: frozenset[str]
    rate_limit: int = 30
    rate_window: timedelta = timedelta(minutes=10)
    soap_enabled: bool = True
    soap_bcc: str | None = None

    @classmethod
    def of(cls, settings) -> MailOptions:
        extra = settings.extra or {}
        own = {settings.own_address.lower()} | {
            a.strip().lower() for a in extra.get("LIAISON_MAIL_OWN_ADDRESSES", "").split(",")
            if a.strip()}
        count, _, seconds = (extra.get("LIAISON_MAIL_RATE_LIMIT") or "30/600").partition("/")
        if not count.strip().isdigit() or not seconds.strip().isdigit():
            raise InvalidInput("LIAISON_MAIL_RATE_LIMIT must look like COUNT/SECONDS, e.g. 30/600",
                               field="LIAISON_MAIL_RATE_LIMIT")
        soap = (extra.get("LIAISON_SOAP_BY_EMAIL") or "1").strip().lower()
        return cls(own_addresses=frozenset(own), rate_limit=int(count),
                   rate_window=timedelta(seconds=int(seconds)),
                   soap_enabled=soap in {"1", "true", "yes", "on"},
                   soap_bcc=(extra.get("LIAISON_SOAP_BY_EMAIL_BCC") or "").strip() or None)


# -- intake ---------------------------------------------------------------------------------

def receive(uow, raw: bytes, source: str, envelope_from: str | None = None,
            recipients: tuple[str, ...] = ()) -> int:
    """Stores one raw inbound mail for the worker and returns its id. Nothing else happens
    here, so the sender gets its acknowledgement as soon as the mail is safe on disk."""
    limit = uow.context.settings.mail_max_bytes
    if len(raw) > limit:
        raise PayloadTooLarge(f"the message has {len(raw)} bytes; the limit is {limit}")
    inbox_id = MailRepository(uow.session).store(
        source=source, raw=raw, size=len(raw), envelope_from=envelope_from,
        recipients=list(recipients), status="pending", attempts=0,
        received_at=uow.context.clock.now())
    uow.after_commit.append(uow.context.work_available.set)
    uow.commit()
    return inbox_id


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
            inbox_id = core.run(receive, path.read_bytes(), "file")
        except PayloadTooLarge as exc:
            yield f"{path}: rejected: {exc.message}"
            continue
        process_message(core, inbox_id)
        row = core.run(message_view, inbox_id)
        yield f"{path}: {row['status']}: {row['outcome']}"


# -- processing -----------------------------------------------------------------------------

def process_inbox(core, limit: int = 20) -> int:
    """Processes pending inbound mail, oldest first; returns how many were handled."""
    ensure_reply_channel(core)
    ids = core.run(lambda uow: MailRepository(uow.session).pending_ids(limit))
    for inbox_id in ids:
        INTAKE.wait_for_quiet()
        process_message(core, inbox_id)
    return len(ids)


@dataclass(frozen=True)
class Prepared:
    """A stored mail read, parsed and matched against the rules, before the transaction
    that applies it: SQLite has one writer, and intake should not wait for our parsing."""

    mail: ParsedMail
    rule: mail_rules.RuleMatch | None


def _pending_mail(uow, inbox_id: int):
    row = MailRepository(uow.session).message(inbox_id)
    if row.status != "pending":
        return None
    return row.raw, row.envelope_from, mail_rules.enabled_rules(uow)


def _prepare(core, inbox_id: int) -> Prepared | None:
    loaded = core.run(_pending_mail, inbox_id)
    if loaded is None:
        return None
    raw, envelope_from, rules = loaded
    mail = parse_message(raw, envelope_from)
    return Prepared(mail, mail_rules.first_match(rules, mail, regex_guard()))


def process_message(core, inbox_id: int) -> str | None:
    """Processes one stored mail; returns its final status (None: another worker had it)."""
    trace, prepared = Trace(), None
    try:
        prepared = _prepare(core, inbox_id)
        result = core.run(_process, inbox_id, prepared, trace) if prepared else None
        if isinstance(result, SoapWork):  # the SOAP service runs its own transactions
            result = _run_soap(core, inbox_id, result)
    except ConcurrentUpdate as exc:  # lost every retry to other writers: not the mail's fault
        return core.run(_record_failure, inbox_id, exc.message)
    except LiaisonError as exc:  # a service refused: nothing of it was kept; record why
        return core.run(_finish_after_error, inbox_id, trace, f"{exc.code}: {exc.message}",
                        prepared.mail if prepared else None)
    except Exception as exc:
        log.exception("processing inbound mail %s failed", inbox_id)
        return core.run(_record_failure, inbox_id, f"{type(exc).__name__}: {exc}")
    return result


def _process(uow, inbox_id: int, prepared: Prepared, trace: Trace):
    trace.__init__()  # a retried transaction starts from scratch
    repo = MailRepository(uow.session)
    if not repo.claim(inbox_id):
        return None
    row, mail = repo.message(inbox_id), prepared.mail
    row.message_id, row.sender, row.subject = mail.message_id, mail.from_addr, mail.subject[:500]
    options = MailOptions.of(uow.context.settings)
    verdict = _guards(uow, repo, row, mail, options) or \
        _route(uow, prepared, options, trace)
    if isinstance(verdict, SoapWork):
        return verdict  # not committed: the row stays pending until the answer is stored
    finish(uow, row, verdict, trace, mail)
    uow.commit()
    return verdict.status


def _guards(uow, repo: MailRepository, row, mail: ParsedMail,
            options: MailOptions) -> Verdict | None:
    """Loop protection, before anything else (rules included)."""
    earlier = repo.processed_with_message_id(mail.message_id, row.id)
    if earlier is not None:
        return Verdict("duplicate", f"same Message-ID as inbound mail {earlier.id}; "
                                    "applied once")
    sender = {mail.from_addr, (mail.return_path or "").lower()} & options.own_addresses
    if sender:
        return Verdict("rejected", f"mail from our own address {sender.pop()}")
    if mail.loop_header and mail.loop_header in options.own_addresses:
        return Verdict("rejected", "mail loop: X-Loop names our own address")
    since = uow.context.clock.now() - options.rate_window
    if mail.from_addr and repo.count_from_sender(mail.from_addr, since, row.id) \
            >= options.rate_limit:
        return Verdict("rejected", f"rate limit: more than {options.rate_limit} mails from "
                                   f"{mail.from_addr} in {options.rate_window}; a mail loop?")
    return None


def _route(uow, prepared: Prepared, options: MailOptions, trace: Trace):
    """Rules first (first match wins), then SOAP by e-mail, then tags (CONTRACT §5)."""
    mail, rule = prepared.mail, prepared.rule
    trace.rule_id = rule.id if rule else None
    if rule is not None and rule.action == "skip":
        return Verdict("skipped", f"skipped by mail rule '{rule.name}'")
    if rule is not None and rule.action == "detect" and rule.group:
        task = mail_rules.open_ticket_from_mail(SharedTransaction(uow), rule, mail)
        trace.task_id = task["id"]
        return Verdict("applied", f"mail rule '{rule.name}' opened ticket {task['ticket_id']} "
                                  f"with task {task['id']} for {rule.group}")
    detected = rule is not None and rule.action == "detect"
    # A matching rule is the administrator's word that this automated mail is wanted.
    if mail.auto_reason and not detected:
        return Verdict("rejected", mail.auto_reason)
    if mail.soap is not None and options.soap_enabled:
        return SoapWork(mail=mail, rule_id=trace.rule_id)
    verdict = apply_tags(SharedTransaction(uow), mail, rule.provider if detected else None,
                         trace)
    if rule is not None and rule.action == "assign_account" and verdict.status == "applied":
        task = uow.repo.task(trace.task_id)
        mail_rules.assign_account(uow, task.ticket, rule.account)
        verdict = Verdict("applied", f"{verdict.outcome}; customer set to {rule.account}")
    return verdict


# -- outcomes -------------------------------------------------------------------------------

def finish(uow, row: orm.MailMessage, verdict: Verdict, trace: Trace,
           mail: ParsedMail | None = None) -> None:
    """Stores the outcome on the mail; a rejection is also an In exchange (CONTRACT §5)."""
    now = uow.context.clock.now()
    row.status, row.outcome, row.processed_at = verdict.status, verdict.outcome, now
    row.task_id, row.rule_id = trace.task_id, trace.rule_id
    if verdict.status != "rejected":
        return
    if trace.task_id is None and mail is not None:
        mail_rules.note_named_task(uow, mail, trace)
        row.task_id = trace.task_id
    uow.repo.insert_exchange(
        task_id=trace.task_id, provider_id=trace.provider_id, request_type=trace.request_type,
        direction=str(Direction.IN), channel="email", status=str(ExchangeStatus.REJECTED),
        attempts=1, error=verdict.outcome, result={},
        payload={"message_id": row.message_id, "from": row.sender, "subject": row.subject,
                 "text": (mail.reply if mail else "")[:2000], "inbound_mail": row.id})


def _finish_after_error(uow, inbox_id: int, trace: Trace, reason: str,
                        mail: ParsedMail | None) -> str | None:
    repo = MailRepository(uow.session)
    if not repo.claim(inbox_id):
        return None
    row = repo.message(inbox_id)
    mail = mail or parse_message(row.raw, row.envelope_from)
    row.message_id, row.sender, row.subject = mail.message_id, mail.from_addr, mail.subject[:500]
    if trace.task_id is not None and uow.session.get(orm.Task, trace.task_id) is None:
        trace.task_id = None  # created by the transaction that was rolled back
    finish(uow, row, Verdict("rejected", reason), trace, mail)
    uow.commit()
    return "rejected"


def _record_failure(uow, inbox_id: int, error: str) -> str | None:
    """Our own failure (or lost races): tried again on the next pass, at most MAX_ATTEMPTS."""
    row = MailRepository(uow.session).message(inbox_id)
    if row.status != "pending":
        return None
    row.outcome, row.attempts = error[:2000], row.attempts + 1
    if row.attempts >= MAX_ATTEMPTS:
        row.status, row.processed_at = "failed", uow.context.clock.now()
    uow.commit()
    return row.status


def message_view(uow, inbox_id: int) -> dict:
    return mail_view(MailRepository(uow.session).message(inbox_id))


def mail_view(row: orm.MailMessage) -> dict:
    return {"id": row.id, "source": row.source, "message_id": row.message_id,
            "from": row.sender, "subject": row.subject, "size": row.size,
            "status": row.status, "outcome": row.outcome, "task_id": row.task_id,
            "rule_id": row.rule_id, "attempts": row.attempts,
            "received_at": row.received_at.isoformat() if row.received_at else None,
            "processed_at": row.processed_at.isoformat() if row.processed_at else None}


def list_messages(uow, status: str | None = None, limit: int = 100) -> list[dict]:
    return [mail_view(row) for row in MailRepository(uow.session).messages(status, limit)]


# -- SOAP by e-mail -------------------------------------------------------------------------

REPLY_CHANNEL = "email-raw"


@dataclass(frozen=True)
class SoapWork:
    """A SOAP request found in a mail: it runs after the mail's transaction, since the SOAP
    service opens transactions of its own."""

    mail: ParsedMail
    rule_id: int | None


def soap_endpoint(core) -> SoapEndpoint | None:
    """The SOAP service's entry point for mail, or None where the process wired none
    (the composition roots do: `webservice.mount.wire_soap_by_mail`)."""
    return core.soap_mail_endpoint


def ensure_reply_channel(core) -> None:
    """Registers the outbox channel that delivers composed answers (once per process)."""
    try:
        core.channels.get(REPLY_CHANNEL)
    except LiaisonError:
        core.channels.register(RawMailChannel(core.mailer, REPLY_CHANNEL))


def _run_soap(core, inbox_id: int, work: SoapWork) -> str | None:
    endpoint = soap_endpoint(core)
    if endpoint is None:
        verdict = Verdict("rejected", "SOAP by e-mail is not available: the SOAP service is "
                                      "not installed")
        return core.run(_finish_soap, inbox_id, work, verdict, None)
    answer = endpoint.answer(work.mail.soap.body, work.mail.soap.content_type)
    verdict = Verdict("rejected" if answer.fault else "applied",
                      "SOAP request answered with a fault" if answer.fault
                      else "SOAP request answered")
    return core.run(_finish_soap, inbox_id, work, verdict, answer)


def _finish_soap(uow, inbox_id: int, work: SoapWork, verdict: Verdict,
                 answer: SoapAnswer | None) -> str | None:
    repo = MailRepository(uow.session)
    if not repo.claim(inbox_id):
        return None
    row, mail = repo.message(inbox_id), work.mail
    row.message_id, row.sender, row.subject = mail.message_id, mail.from_addr, mail.subject[:500]
    if answer is not None:
        verdict = Verdict(verdict.status, f"{verdict.outcome}; {_queue_answer(uow, mail, answer)}")
    finish(uow, row, verdict, Trace(rule_id=work.rule_id), mail)
    uow.commit()
    return verdict.status


def _queue_answer(uow, mail: ParsedMail, answer: SoapAnswer) -> str:
    """Mails the SOAP response to the request's reply address (else its sender), optionally
    BCC'd, never to one of our own addresses."""
    options = MailOptions.of(uow.context.settings)
    to = mail.reply_to or mail.from_addr
    if not to or to in options.own_addresses:
        return "response not mailed: the reply address is missing or our own"
    bcc = options.soap_bcc if options.soap_bcc not in options.own_addresses else None
    reply = compose_soap_reply(mail, answer.body, answer.content_type,
                               uow.context.settings.own_address, to, bcc)
    uow.repo.insert_outbox(channel=REPLY_CHANNEL, message={"eml": reply.as_string()},
                           next_attempt_at=uow.context.clock.now())
    uow.after_commit.append(uow.context.work_available.set)
    return f"response mailed to {to}" + (f" (BCC {bcc})" if bcc else "")
