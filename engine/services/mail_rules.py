"""The administrator's automated e-mail rules (CONTRACT §5): kept in order, matched against
each inbound mail before anything else.

Automated rules work as in RangerMSP's e-mail connector: an ordered list, the first enabled
rule whose conditions all hold wins. Conditions are case-insensitive *contains* or regular
expressions (searched with a time bound) on from, to, subject or body. Actions: *detect* —
treat the mail as a given provider's reply, or open a ticket and a task for a given group
from an alert; *skip* — ignore it (recorded); *assign account* — set the customer of the
ticket the mail ends up on, and carry on with the usual processing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from engine.adapters import orm
from engine.adapters.mail_conditions import (
    RULE_FIELDS,
    RULE_MATCHES,
    Condition,
    RegexGuard,
    condition_holds,
)
from engine.adapters.mail_parsing import ParsedMail
from engine.adapters.mail_repository import MailRepository
from engine.exceptions import InvalidInput
from engine.services import customers, tasks
from engine.services.views import iso

log = logging.getLogger(__name__)

ACTIONS = ("detect", "skip", "assign_account")
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
