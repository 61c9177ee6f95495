"""The rules an inbound mail is applied by: the administrator's automated e-mail rules, then
the tag grammar of a provider's reply (CONTRACT §5).

Automated rules work as in RangerMSP's e-mail connector: an ordered list, the first enabled
rule whose conditions all hold wins. Conditions are case-insensitive *contains* or regular
expressions (searched with a time bound) on from, to, subject or body. Actions: *detect* —
treat the mail as a given provider's reply, or open a ticket and a task for a given group
from an alert; *skip* — ignore it (recorded); *assign account* — set the customer of the
ticket the mail ends up on, and carry on with the usual processing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from engine.adapters import orm
from engine.adapters.mail_intake import (
    RULE_FIELDS,
    RULE_MATCHES,
    Condition,
    ParsedMail,
    RegexGuard,
    condition_holds,
    read_tags,
)
from engine.adapters.mail_repository import MailRepository
from engine.domain import tags
from engine.domain.credentials import check_task_token
from engine.domain.events import RequestType
from engine.exceptions import InvalidInput
from engine.services import customers, tasks
from engine.services.inbound import (
    Inbound,
    acknowledge_external,
    reassign_external,
    update_external,
)
from engine.services.views import iso

log = logging.getLogger(__name__)

ACTIONS = ("detect", "skip", "assign_account")
TAG_ACTIONS = {"update": RequestType.UPDATE, "reassign": RequestType.REASSIGNED,
               "resolve": RequestType.REASSIGNED}
MAX_CONDITIONS = 20
MAX_VALUE = 500


@dataclass(frozen=True)
class RuleMatch:
    """A rule as plain values, so that it can be evaluated outside any transaction."""

    id: int
    name: str
    action: str
    provider: str | None
    group: str | None
    account: str | None
    conditions: tuple[Condition, ...] = ()


def _repo(uow) -> MailRepository:
    return MailRepository(uow.session)


def rule_view(rule: orm.MailRule) -> dict:
    return {"id": rule.id, "position": rule.position, "name": rule.name,
            "enabled": rule.enabled, "conditions": list(rule.conditions or []),
            "action": rule.action, "provider": rule.provider.name if rule.provider else None,
            "group": rule.group.name if rule.group else None, "account": rule.account,
            "created_at": iso(rule.created_at), "updated_at": iso(rule.updated_at)}


def _condition(raw: dict, number: int) -> dict:
    field, match = raw.get("field"), raw.get("match", "contains")
    value = raw.get("value")
    where = f"conditions[{number}]"
    if field not in RULE_FIELDS:
        raise InvalidInput(f"{where}.field must be one of {', '.join(RULE_FIELDS)}", field=where)
    if match not in RULE_MATCHES:
        raise InvalidInput(f"{where}.match must be 'contains' or 'regex'", field=where)
    if not isinstance(value, str) or not value or len(value) > MAX_VALUE:
        raise InvalidInput(f"{where}.value: 1-{MAX_VALUE} characters", field=where)
    if match == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise InvalidInput(f"{where}.value is not a regular expression: {exc}",
                               field=where) from None
    return {"field": field, "match": match, "value": value}


def _conditions(raw) -> list[dict]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CONDITIONS:
        raise InvalidInput(f"conditions: a list of 1-{MAX_CONDITIONS} conditions",
                           field="conditions")
    return [_condition(item if isinstance(item, dict) else {}, n) for n, item in enumerate(raw)]


def _targets(uow, action: str, provider: str | None, group: str | None,
             account: str | None) -> tuple[orm.Provider | None, orm.Group | None]:
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", field="action")
    if action == "detect" and bool(provider) == bool(group):
        raise InvalidInput("detect needs either a provider (its replies) or a group (alerts "
                           "open a ticket and a task for it)", field="action")
    if action == "assign_account" and not account:
        raise InvalidInput("assign_account needs an account", field="account")
    provider_row = uow.repo.provider_by_name(provider) if provider else None
    if provider and provider_row is None:
        raise InvalidInput(f"provider {provider!r} not found", field="provider")
    group_row = uow.repo.group_by_name(group) if group else None
    if group and group_row is None:
        raise InvalidInput(f"group {group!r} not found", field="group")
    return provider_row, group_row


def _place(uow, rule: orm.MailRule, position: int | None) -> None:
    """Moves the rule to a 1-based position and renumbers the list without gaps."""
    others = [r for r in _repo(uow).rules() if r is not rule]
    index = len(others) if position is None else max(0, min(position - 1, len(others)))
    others.insert(index, rule)
    for number, each in enumerate(others, start=1):
        each.position = number


def _fill(uow, rule: orm.MailRule, data: dict) -> None:
    name = (data.get("name") or "").strip()
    if not 1 <= len(name) <= 120:
        raise InvalidInput("name: 1-120 characters", field="name")
    action = data.get("action")
    provider, group = _targets(uow, action, data.get("provider"), data.get("group"),
                               data.get("account"))
    rule.name, rule.action, rule.enabled = name, action, bool(data.get("enabled", True))
    rule.conditions = _conditions(data.get("conditions"))
    rule.provider, rule.group = provider, group
    rule.account = (data.get("account") or "").strip()[:200] or None


def list_rules(uow) -> list[dict]:
    return [rule_view(rule) for rule in _repo(uow).rules()]


def get_rule(uow, rule_id: int) -> dict:
    return rule_view(_repo(uow).rule(rule_id))


def create_rule(uow, **data) -> dict:
    """Adds a rule at `position` (1-based; default: last)."""
    rule = orm.MailRule(position=0)
    _fill(uow, rule, data)
    _repo(uow).add(rule)
    _place(uow, rule, data.get("position"))
    uow.commit()
    return rule_view(rule)


def update_rule(uow, rule_id: int, **data) -> dict:
    """Replaces a rule's settings; `position` moves it."""
    rule = _repo(uow).rule(rule_id)
    _fill(uow, rule, data)
    _place(uow, rule, data.get("position", rule.position))
    uow.commit()
    return rule_view(rule)


def delete_rule(uow, rule_id: int) -> None:
    repo = _repo(uow)
    repo.delete(repo.rule(rule_id))
    uow.repo.flush()
    for number, rule in enumerate(repo.rules(), start=1):
        rule.position = number
    uow.commit()


def enabled_rules(uow) -> list[RuleMatch]:
    """The enabled rules, in order."""
    return [RuleMatch(rule.id, rule.name, rule.action,
                      rule.provider.name if rule.provider else None,
                      rule.group.name if rule.group else None, rule.account,
                      tuple(Condition(c["field"], c["match"], c["value"])
                            for c in rule.conditions or []))
            for rule in _repo(uow).rules(enabled_only=True)]


def _holds(rule: RuleMatch, mail: ParsedMail, guard: RegexGuard) -> bool:
    for condition in rule.conditions:
        held = condition_holds(condition, mail, guard)
        if held is None:
            log.warning("mail rule %s (%s): regular expression %r took too long on %s; "
                        "treated as not matching", rule.id, rule.name, condition.value,
                        mail.message_id)
        if not held:
            return False
    return True


def first_match(rules: list[RuleMatch], mail: ParsedMail, guard: RegexGuard) -> RuleMatch | None:
    """The first rule, in order, whose conditions all hold for the mail."""
    return next((rule for rule in rules if _holds(rule, mail, guard)), None)


def assign_account(uow, ticket: orm.Ticket, account: str) -> None:
    """The action *assign account*: the account names the ticket's customer (created when
    unknown)."""
    customers.set_ticket_customer(uow, ticket, account)


def open_ticket_from_mail(uow, rule: RuleMatch, mail: ParsedMail) -> dict:
    """detect → group: a ticket and a task from an alert mail, titled by its subject.
    Call with a shared-transaction unit of work: the caller commits once."""
    title = (mail.subject or f"Alert from {mail.from_addr or 'unknown sender'}")[:500]
    description = mail.text.strip()[:100_000]
    ticket = tasks.create_ticket(uow, title, description, customer=rule.account)
    task = tasks.create_task(uow, ticket["id"], title, description, group=rule.group,
                             actor=f"mail rule {rule.name}"[:120])
    uow.repo.insert_note(task_id=task["id"], kind="mail",
                         text=f"Opened from e-mail {mail.message_id} from "
                              f"{mail.from_addr or 'unknown'} by rule '{rule.name}'",
                         author="mail")
    return task


# -- what is applied, and the tags of a provider's reply -------------------------------------

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


def _task_id(found: tags.ParsedTags, mail: ParsedMail) -> int | None:
    value = found.values.get("task_id", "").strip().lstrip("#")
    if value:
        if not value.isdigit():
            raise InvalidInput(f"the TaskId tag {value[:40]!r} is not a number", field="TaskId")
        return int(value)
    return tags.task_id_from_subject(mail.subject)


def _labels_provider(uow, hint: str | None, mail: ParsedMail) -> orm.Provider | None:
    if hint:
        return uow.repo.provider_by_name(hint)
    return uow.repo.provider_by_email(mail.from_addr) if mail.from_addr else None


def _authentication_problem(uow, task_id: int, found: tags.ParsedTags,
                            provider: orm.Provider, mail: ParsedMail) -> str | None:
    token = found.values.get("token", "")
    if token and check_task_token(uow.context.settings.secret_key, task_id, token):
        return None
    if provider.trust_sender and provider.email and mail.from_addr == provider.email.lower():
        return None  # the provider is set to trust its sender address instead
    if not token:
        return "missing Token tag: a reply must keep the Token of our mail"
    return f"the Token does not match task {task_id} (forged or altered)"


def _request_type(found: tags.ParsedTags) -> str:
    action = found.values.get("action", "").strip().lower()
    if action in TAG_ACTIONS:
        return str(TAG_ACTIONS[action])
    if found.values.get("external_reference"):
        return str(RequestType.ACKNOWLEDGEMENT)
    return str(RequestType.UPDATE)


def note_named_task(uow, mail: ParsedMail, trace: Trace) -> None:
    """For a mail rejected before its tags were read: the task it names, when that exists,
    so the rejection shows on the task (CONTRACT §5). Proves nothing about the sender."""
    labelled_by = _labels_provider(uow, None, mail)
    found = read_tags(mail, tags.labels_for(labelled_by.tag_labels if labelled_by else None))
    try:
        task_id = _task_id(found, mail)
    except InvalidInput:
        return
    task = uow.session.get(orm.Task, task_id) if task_id is not None else None
    if task is None:
        return
    provider = task.group.provider if task.group is not None else None
    trace.task_id, trace.provider_id = task.id, provider.id if provider else None
    trace.request_type = _request_type(found)


def apply_tags(uow, mail: ParsedMail, provider_hint: str | None, trace: Trace) -> Verdict:
    """Applies a provider's reply: the task and a valid token are required."""
    labelled_by = _labels_provider(uow, provider_hint, mail)
    found = read_tags(mail, tags.labels_for(labelled_by.tag_labels if labelled_by else None))
    task_id = _task_id(found, mail)
    if task_id is None:
        return Verdict("rejected", "the mail names no task: no TaskId tag and no "
                                   "[Task #id] in the subject")
    task = uow.repo.task(task_id)
    trace.task_id = task.id
    provider = task.group.provider if task.group is not None and task.group.integrated else None
    if provider is None:
        return Verdict("rejected", f"task {task.id} is not held by a provider's group")
    trace.provider_id = provider.id
    if provider_hint and provider_hint != provider.name:
        return Verdict("rejected", f"task {task.id} is not held by a group of {provider_hint}")
    if labelled_by is None or labelled_by.id != provider.id:
        found = read_tags(mail, tags.labels_for(provider.tag_labels))
    action = found.values.get("action", "").strip().lower()
    trace.request_type = _request_type(found)
    problem = _authentication_problem(uow, task.id, found, provider, mail)
    if problem:
        return Verdict("rejected", problem)
    if action and action not in TAG_ACTIONS:
        return Verdict("rejected", f"unknown Action {action[:40]!r}: use Update, Reassign "
                                   "or Resolve")
    return _apply_action(uow, task.id, provider.name, found, action, mail)


def idempotency_key(message_id: str, suffix: str = "") -> str:
    key = f"{message_id}#{suffix}" if suffix else message_id
    return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _apply_action(uow, task_id: int, provider: str, found: tags.ParsedTags, action: str,
                  mail: ParsedMail) -> Verdict:
    reference = found.values.get("external_reference", "").strip() or None
    text = found.text

    def source(suffix: str = "") -> Inbound:
        return Inbound(provider=provider, channel="email",
                       request_id=idempotency_key(mail.message_id, suffix))

    done = []
    if reference and acknowledge_external(uow, task_id, reference,
                                          source("ack"))["status"] == "accepted":
        done.append(f"external reference {reference} set")
    result = None
    if action == "update" or (not action and not reference and text):
        result = update_external(uow, task_id, text, reference, source())
        done.append("update added")
    elif action in ("reassign", "resolve"):
        result = reassign_external(uow, task_id, solution=text or None, reference=reference,
                                   source=source())
        done.append("returned by the provider" + (" with a solution" if text else ""))
    if result is not None and result["status"] == "duplicate":
        return Verdict("duplicate", f"task {task_id}: already applied from this Message-ID")
    if done:
        return Verdict("applied", f"task {task_id}: " + ", ".join(done))
    if reference:
        return Verdict("applied", f"task {task_id}: nothing new (reference {reference} "
                                  "already set)")
    return Verdict("rejected", "nothing to apply: no ExternalReference, no Action and no text")
