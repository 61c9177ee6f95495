"""Inbound e-mail, the worker's part (CONTRACT §5): stored mail is applied in order —
loop guards (same Message-ID, our own address, per-sender rate limit) → automated e-mail
rules → auto-reply check → SOAP by e-mail → tags. Intake is engine.services.mail_intake.

Mails are applied in batches, one transaction per batch: what a mail applies and its
outcome commit together, with the batch, so a crash at any point leaves each mail pending
or applied, never half. A batch runs first without savepoints; when one of its mails raises
(a service refuses it, or it fails), that run is rolled back and the batch runs again with
a savepoint per mail: the mail is rolled back alone and recorded as refused or failed, the
others stay. A batch that fails as a whole (lost races, a broken connection) is applied
again one mail at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from engine.adapters.mail_conditions import RegexGuard
from engine.adapters.mail_parsing import ParsedMail, parse_message
from engine.adapters.mail_repository import MailRepository
from engine.exceptions import Busy, ConcurrentUpdate, LiaisonError
from engine.services import mail_rules
from engine.services.mail_apply import apply_tags
from engine.services.mail_guards import LoopGuard
from engine.services.mail_outcome import (
    MAX_ATTEMPTS,
    MailOptions,
    SharedTransaction,
    Trace,
    Verdict,
    finish,
    note_failure,
    record_failure,
    reject_after_error,
)
from engine.services.mail_soap import SoapWork, run_soap

log = logging.getLogger(__name__)

__all__ = ["MAX_ATTEMPTS", "process_inbox", "process_message"]

_guard: RegexGuard | None = None


def regex_guard() -> RegexGuard:
    global _guard  # one helper process per OS process, started on first use
    if _guard is None:
        _guard = RegexGuard()
    return _guard


@dataclass(frozen=True)
class Prepared:
    """A stored mail read, parsed and matched against the rules before the transaction
    that applies it: SQLite has one writer, and intake should not wait for our parsing."""

    inbox_id: int
    mail: ParsedMail
    rule: mail_rules.RuleMatch | None


def process_inbox(core, limit: int | None = None) -> int:
    """Applies up to `limit` (LIAISON_MAIL_BATCH, 50) pending mails, oldest first, in one
    transaction (on SQLite in several when senders wait meanwhile); returns how many were
    handled."""
    _let_intake_first(core)
    limit = limit or MailOptions.of(core.settings).batch
    pending, rules = core.run(_pending, limit)
    prepared = [item for item in (_prepare(core, row, rules) for row in pending) if item]
    _apply(core, prepared)
    return len(pending)


def process_message(core, inbox_id: int) -> str | None:
    """Applies one stored mail; returns its final status (None: another worker had it)."""
    loaded = core.run(lambda uow: MailRepository(uow.session).message(inbox_id))
    if loaded.status != "pending":
        return None
    rules = core.run(mail_rules.enabled_rules)
    prepared = _prepare(core, (inbox_id, loaded.raw, loaded.envelope_from), rules)
    return _apply(core, [prepared]).get(inbox_id) if prepared else "failed"


def _pending(uow, limit: int):
    pending = MailRepository(uow.session).pending_mail(limit)
    return pending, mail_rules.enabled_rules(uow) if pending else []


def _prepare(core, row: tuple, rules: list[mail_rules.RuleMatch]) -> Prepared | None:
    inbox_id, raw, envelope_from = row
    try:
        mail = parse_message(raw, envelope_from)
        return Prepared(inbox_id, mail, mail_rules.first_match(rules, mail, regex_guard()))
    except Exception as exc:  # e.g. the regular-expression helper would not start
        log.exception("preparing inbound mail %s failed", inbox_id)
        core.run(record_failure, inbox_id, f"{type(exc).__name__}: {exc}")
        return None


def _apply(core, prepared: list[Prepared]) -> dict[int, str | None]:
    """Applies the batch, in several transactions when intake needs the database meanwhile;
    when it fails as a whole, each mail on its own."""
    statuses: dict[int, str | None] = {}
    while prepared:
        try:
            done, deferred, reached = _run_batch(core, prepared)
        except Exception as exc:
            statuses.update(_apply_alone(core, prepared, exc))
            break
        for work in deferred:  # the SOAP service runs transactions of its own
            done[work.inbox_id] = _answer_soap(core, work)
        statuses.update(done)
        prepared = prepared[reached:]
        if prepared:
            _let_intake_first(core)
    return statuses


def _apply_alone(core, prepared: list[Prepared], exc: Exception) -> dict[int, str | None]:
    if len(prepared) > 1:
        log.warning("a batch of %d inbound mails failed (%s); applying them one by one",
                    len(prepared), exc)
        return {k: v for item in prepared for k, v in _apply(core, [item]).items()}
    if not isinstance(exc, ConcurrentUpdate):
        log.error("applying inbound mail %s failed", prepared[0].inbox_id, exc_info=exc)
    error = exc.message if isinstance(exc, ConcurrentUpdate) else f"{type(exc).__name__}: {exc}"
    return {prepared[0].inbox_id: core.run(record_failure, prepared[0].inbox_id, error)}


def _run_batch(core, prepared: list[Prepared]):
    """Optimistic first, without savepoints: they cost a fifth of the batch's CPU. When a
    mail raises, that run is rolled back and the batch runs again with a savepoint per
    mail, so the mail is rolled back alone and the others stay."""
    try:
        return core.run(_apply_batch, prepared, False)
    except Exception as exc:
        log.debug("inbound mail batch rolled back (%s); again, a savepoint per mail", exc)
        return core.run(_apply_batch, prepared, True)


def _answer_soap(core, work: SoapWork) -> str | None:
    try:
        return run_soap(core, work)
    except Exception as exc:
        log.exception("answering the SOAP request of inbound mail %s failed", work.inbox_id)
        return core.run(record_failure, work.inbox_id, f"{type(exc).__name__}: {exc}")


@dataclass
class _Batch:
    """What the mails of one transaction share: settings, loop guards, known senders."""

    options: MailOptions
    guard: LoopGuard
    senders: dict = field(default_factory=dict)
    loaded: list = field(default_factory=list)  # see _keep_loaded


def _keep_loaded(session, batch: _Batch) -> None:
    """Keeps what the batch loads (tasks, their groups, instances) until it commits: the
    session's identity map holds objects weakly, so every mail of a task would load the
    task again once the mail before had let go of it."""
    event.listen(session, "loaded_as_persistent",
                 lambda _session, instance: batch.loaded.append(instance))


def _apply_batch(uow, prepared: list[Prepared], careful: bool):
    """-> (statuses, SOAP requests to answer, how many of `prepared` it got to)."""
    rows = MailRepository(uow.session).claim_pending([item.inbox_id for item in prepared])
    statuses: dict[int, str | None] = {}
    deferred: list[SoapWork] = []
    batch = _batch(uow, [item for item in prepared if item.inbox_id in rows])
    for position, item in enumerate(prepared):
        if item.inbox_id not in rows:
            continue  # another worker has it, or had it
        row = rows[item.inbox_id]
        result = _apply_one(uow, row, item, batch) if careful else \
            _settle(uow, row, item, batch, Trace())
        if isinstance(result, SoapWork):
            deferred.append(result)
        else:
            statuses[item.inbox_id] = result
            batch.guard.record(item.inbox_id, item.mail, result)
        if not careful and _intake_waits(uow):
            uow.commit()
            return statuses, deferred, position + 1
    uow.commit()
    return statuses, deferred, len(prepared)


def _batch(uow, mine: list[Prepared]) -> _Batch:
    options = MailOptions.of(uow.context.settings)
    batch = _Batch(options, LoopGuard.for_batch(
        uow, options, [(item.inbox_id, item.mail) for item in mine]))
    _keep_loaded(uow.session, batch)
    return batch


def _intake_waits(uow) -> bool:
    """SQLite has one writer: a sender waiting for its 250 comes before the rest of the
    batch, which goes on in a transaction of its own."""
    return uow.context.db.dialect.name == "sqlite" and uow.context.intake_gate.busy()


def _let_intake_first(core) -> None:
    """On SQLite, waits while mail is being stored (bounded): senders first. PostgreSQL
    takes both at once."""
    if core.db.dialect.name == "sqlite":
        core.intake_gate.wait_for_quiet()


def _settle(uow, row, item: Prepared, batch: _Batch, trace: Trace) -> str | SoapWork:
    """Decides on one mail, applies what it asks for and records its outcome. A SOAP request
    is answered after the transaction: the mail stays pending until then."""
    verdict = batch.guard.verdict(item.mail) or _route(uow, item, batch, trace)
    if isinstance(verdict, SoapWork):
        return verdict
    finish(uow, row, verdict, trace, item.mail)
    return verdict.status


def _apply_one(uow, row, item: Prepared, batch: _Batch) -> str | SoapWork:
    """`_settle` in a savepoint of the batch's transaction: a mail that raises is rolled
    back alone and recorded as refused, or as failed (tried again later)."""
    trace = Trace()
    try:
        with uow.session.begin_nested():
            return _settle(uow, row, item, batch, trace)
    except (ConcurrentUpdate, Busy) as exc:  # not the mail's fault: tried again later
        return _in_savepoint(uow, note_failure, row, exc.message)
    except LiaisonError as exc:  # a service refused: nothing of it was kept; record why
        _in_savepoint(uow, reject_after_error, row, item.mail, trace,
                      f"{exc.code}: {exc.message}")
        return "rejected"
    except (DBAPIError, StaleDataError):
        raise  # the batch as a whole: retried, else applied one mail at a time
    except Exception as exc:
        log.exception("processing inbound mail %s failed", row.id)
        return _in_savepoint(uow, note_failure, row, f"{type(exc).__name__}: {exc}")


def _in_savepoint(uow, record, *args):
    with uow.session.begin_nested():
        return record(uow, *args)


def _route(uow, item: Prepared, batch: _Batch, trace: Trace):
    """Rules first (first match wins), then SOAP by e-mail, then tags (CONTRACT §5)."""
    mail, rule = item.mail, item.rule
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
    if mail.soap is not None and batch.options.soap_enabled:
        return SoapWork(inbox_id=item.inbox_id, mail=mail, rule_id=trace.rule_id)
    verdict = apply_tags(SharedTransaction(uow), mail, rule.provider if detected else None,
                         trace, batch.senders)
    if rule is not None and rule.action == "assign_account" and verdict.status == "applied":
        task = uow.repo.task(trace.task_id)
        mail_rules.assign_account(uow, task.ticket, rule.account)
        verdict = Verdict("applied", f"{verdict.outcome}; customer set to {rule.account}")
    return verdict
