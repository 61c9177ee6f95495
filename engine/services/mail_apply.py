"""A provider's reply applied to its task: the tags checked (task, provider, Token), then
the inbound use cases they ask for — acknowledgement, update, reassignment — run in the
mail's transaction, each idempotent by the mail's Message-ID."""

from __future__ import annotations

import hashlib

from engine.adapters.mail_parsing import ParsedMail
from engine.domain import tags
from engine.services.inbound import (
    Inbound,
    acknowledge_external,
    reassign_external,
    update_external,
)
from engine.services.mail_outcome import Trace, Verdict
from engine.services.mail_tags import (
    TAG_ACTIONS,
    authentication_problem,
    labels_provider,
    request_type_of,
    tags_of,
    task_id_named,
)


def apply_tags(uow, mail: ParsedMail, provider_hint: str | None, trace: Trace,
               senders: dict | None = None) -> Verdict:
    """Applies a provider's reply: the task and a valid token are required. `senders`
    remembers the providers of sender addresses across the mails of one transaction."""
    labelled_by = labels_provider(uow, provider_hint, mail, senders)
    found = tags_of(mail, labelled_by)
    task_id = task_id_named(found, mail)
    if task_id is None:
        return Verdict("rejected", "the mail names no task: no TaskId tag and no "
                                   "[Task #id] in the subject")
    # as the inbound use case reads it (plain rows, locked): no ORM graph is built for a reply
    task = uow.repo.task_row_for_update(task_id)
    trace.task_id = task.id
    provider = task.group.provider if task.group is not None and task.group.integrated else None
    if provider is None:
        return Verdict("rejected", f"task {task.id} is not held by a provider's group")
    trace.provider_id = provider.id
    if provider_hint and provider_hint != provider.name:
        return Verdict("rejected", f"task {task.id} is not held by a group of {provider_hint}")
    if labelled_by is None or labelled_by.id != provider.id:
        found = tags_of(mail, provider)
    action = found.values.get("action", "").strip().lower()
    trace.request_type = request_type_of(found)
    problem = authentication_problem(uow, task.id, found, provider, mail)
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
