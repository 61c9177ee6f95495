"""What became of an inbound mail: the verdict of processing, recorded on the stored mail
(and, for a rejection, as an In exchange — CONTRACT §5), and the views of the mail log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from engine.adapters import orm
from engine.adapters.mail_parsing import ParsedMail
from engine.adapters.mail_repository import MailRepository
from engine.domain.events import Direction, ExchangeStatus, RequestType
from engine.exceptions import InvalidInput
from engine.services.mail_tags import named_task
from engine.services.views import iso

MAX_ATTEMPTS = 3  # an unexpected failure is retried, then the mail is marked failed


@dataclass(frozen=True)
class Verdict:
    status: str  # applied | rejected | skipped | duplicate
    outcome: str


@dataclass
class Trace:
    """What processing learnt so far; a rejection is recorded with it."""

    task_id: int | None = None
    provider_id: int | None = None
    rule_id: int | None = None
    request_type: str = str(RequestType.UPDATE)


class SharedTransaction:
    """Lets several use cases run in one transaction: their commits become flushes, and the
    caller commits once, so a mail's effects and its outcome are stored together."""

    def __init__(self, uow) -> None:
        self._uow = uow

    def __getattr__(self, name):
        return getattr(self._uow, name)

    def commit(self) -> None:
        self._uow.repo.flush()


@dataclass(frozen=True)
class MailOptions:
    """E-mail settings beyond engine.config's, read from LIAISON_* variables."""

    own_addresses: frozenset[str]
    rate_limit: int = 30
    rate_window: timedelta = timedelta(minutes=10)
    soap_enabled: bool = True
    soap_bcc: str | None = None
    batch: int = 50  # mails applied per transaction

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
        batch = (extra.get("LIAISON_MAIL_BATCH") or "50").strip()
        if not batch.isdigit() or not 1 <= int(batch) <= 1000:
            raise InvalidInput("LIAISON_MAIL_BATCH must be a number of mails from 1 to 1000",
                               field="LIAISON_MAIL_BATCH")
        soap = (extra.get("LIAISON_SOAP_BY_EMAIL") or "1").strip().lower()
        return cls(own_addresses=frozenset(own), rate_limit=int(count),
                   rate_window=timedelta(seconds=int(seconds)),
                   soap_enabled=soap in {"1", "true", "yes", "on"},
                   soap_bcc=(extra.get("LIAISON_SOAP_BY_EMAIL_BCC") or "").strip() or None,
                   batch=int(batch))


def describe(row: orm.MailMessage, mail: ParsedMail) -> None:
    """Copies what the log shows of a mail onto its row."""
    row.message_id, row.sender, row.subject = mail.message_id, mail.from_addr, mail.subject[:500]


def finish(uow, row: orm.MailMessage, verdict: Verdict, trace: Trace,
           mail: ParsedMail | None = None) -> None:
    """Stores the outcome on the mail; a rejection is also an In exchange (CONTRACT §5)."""
    if mail is not None:
        describe(row, mail)
    now = uow.context.clock.now()
    row.status, row.outcome, row.processed_at = verdict.status, verdict.outcome, now
    row.task_id, row.rule_id, row.attempts = trace.task_id, trace.rule_id, row.attempts + 1
    if verdict.status != "rejected":
        return
    if trace.task_id is None and mail is not None:
        named = named_task(uow, mail)
        if named is not None:
            trace.task_id, trace.provider_id, trace.request_type = named
            row.task_id = trace.task_id
    uow.repo.insert_exchange(
        task_id=trace.task_id, provider_id=trace.provider_id, request_type=trace.request_type,
        direction=str(Direction.IN), channel="email", status=str(ExchangeStatus.REJECTED),
        attempts=1, error=verdict.outcome, result={},
        payload={"message_id": row.message_id, "from": row.sender, "subject": row.subject,
                 "text": (mail.reply if mail else "")[:2000], "inbound_mail": row.id})


def reject_after_error(uow, row: orm.MailMessage, mail: ParsedMail, trace: Trace,
                       reason: str) -> None:
    """A service refused the mail and what it did was rolled back: records the rejection."""
    if trace.task_id is not None and uow.session.get(orm.Task, trace.task_id) is None:
        trace.task_id = None  # created by the work that was rolled back
    finish(uow, row, Verdict("rejected", reason), trace, mail)


def note_failure(uow, row: orm.MailMessage, error: str) -> str:
    """Our own failure (or lost races): tried again on the next pass, at most MAX_ATTEMPTS."""
    row.outcome, row.attempts = error[:2000], row.attempts + 1
    if row.attempts >= MAX_ATTEMPTS:
        row.status, row.processed_at = "failed", uow.context.clock.now()
    return row.status


def record_failure(uow, inbox_id: int, error: str) -> str | None:
    """`note_failure` in a transaction of its own, for a mail that is still pending."""
    row = MailRepository(uow.session).message(inbox_id)
    if row.status != "pending":
        return None
    status = note_failure(uow, row, error)
    uow.commit()
    return status


# -- the inbound mail log -------------------------------------------------------------------

def mail_view(row: orm.MailMessage) -> dict:
    return {"id": row.id, "source": row.source, "message_id": row.message_id,
            "from": row.sender, "subject": row.subject, "size": row.size,
            "status": row.status, "outcome": row.outcome, "task_id": row.task_id,
            "rule_id": row.rule_id, "attempts": row.attempts, "repeats": row.repeats,
            "received_at": iso(row.received_at), "last_seen_at": iso(row.last_seen_at),
            "processed_at": iso(row.processed_at)}


def message_view(uow, inbox_id: int) -> dict:
    return mail_view(MailRepository(uow.session).message(inbox_id))


def list_messages(uow, status: str | None = None, limit: int = 100) -> list[dict]:
    return [mail_view(row) for row in MailRepository(uow.session).messages(status, limit)]
