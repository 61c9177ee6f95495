"""Inbound e-mail, the worker's part (CONTRACT §5): each stored mail is applied in order —
loop guards (same Message-ID, our own address, per-sender rate limit) → automated e-mail
rules → auto-reply check → SOAP by e-mail → tags. Whatever is applied and the mail's
outcome commit together, so a crash at any point leaves the mail pending and it is applied
exactly once when a worker runs again. Intake is engine.services.mail_intake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.adapters.mail_conditions import RegexGuard
from engine.adapters.mail_parsing import ParsedMail, parse_message
from engine.adapters.mail_repository import MailRepository
from engine.exceptions import ConcurrentUpdate, LiaisonError
from engine.services import mail_rules
from engine.services.mail_apply import apply_tags
from engine.services.mail_outcome import (
    MAX_ATTEMPTS,
    MailOptions,
    SharedTransaction,
    Trace,
    Verdict,
    describe,
    finish,
    finish_after_error,
    record_failure,
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


def process_inbox(core, limit: int = 20) -> int:
    """Processes pending inbound mail, oldest first; returns how many were handled."""
    ids = core.run(lambda uow: MailRepository(uow.session).pending_ids(limit))
    for inbox_id in ids:
        core.intake_gate.wait_for_quiet()
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
            result = run_soap(core, result)
    except ConcurrentUpdate as exc:  # lost every retry to other writers: not the mail's fault
        return core.run(record_failure, inbox_id, exc.message)
    except LiaisonError as exc:  # a service refused: nothing of it was kept; record why
        return core.run(finish_after_error, inbox_id, trace, f"{exc.code}: {exc.message}",
                        prepared.mail if prepared else None)
    except Exception as exc:
        log.exception("processing inbound mail %s failed", inbox_id)
        return core.run(record_failure, inbox_id, f"{type(exc).__name__}: {exc}")
    return result


def _process(uow, inbox_id: int, prepared: Prepared, trace: Trace):
    trace.__init__()  # a retried transaction starts from scratch
    repo = MailRepository(uow.session)
    if not repo.claim(inbox_id):
        return None
    row, mail = repo.message(inbox_id), prepared.mail
    describe(row, mail)
    options = MailOptions.of(uow.context.settings)
    verdict = _guards(uow, repo, row, mail, options) or \
        _route(uow, inbox_id, prepared, options, trace)
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


def _route(uow, inbox_id: int, prepared: Prepared, options: MailOptions, trace: Trace):
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
        return SoapWork(inbox_id=inbox_id, mail=mail, rule_id=trace.rule_id)
    verdict = apply_tags(SharedTransaction(uow), mail, rule.provider if detected else None,
                         trace)
    if rule is not None and rule.action == "assign_account" and verdict.status == "applied":
        task = uow.repo.task(trace.task_id)
        mail_rules.assign_account(uow, task.ticket, rule.account)
        verdict = Verdict("applied", f"{verdict.outcome}; customer set to {rule.account}")
    return verdict
