"""What the tags of a provider's reply say (CONTRACT §5): the task it names, the request type
it asks for, and whether its Token proves that the sender saw our mail."""

from __future__ import annotations

from engine.adapters import orm
from engine.adapters.mail_parsing import ParsedMail, read_tags
from engine.domain import tags
from engine.domain.credentials import check_task_token
from engine.domain.events import RequestType
from engine.exceptions import InvalidInput

TAG_ACTIONS = {"update": RequestType.UPDATE, "reassign": RequestType.REASSIGNED,
               "resolve": RequestType.REASSIGNED}


def labels_provider(uow, hint: str | None, mail: ParsedMail,
                    known: dict | None = None) -> orm.Provider | None:
    """The provider whose tag labels to read the mail with: the one a rule named, else the
    one the sender's address belongs to. `known` remembers senders within a transaction."""
    if hint:
        return uow.repo.provider_by_name(hint)
    if not mail.from_addr:
        return None
    if known is None or mail.from_addr not in known:
        found = uow.repo.provider_by_email(mail.from_addr)
        if known is None:
            return found
        known[mail.from_addr] = found
    return known[mail.from_addr]


def tags_of(mail: ParsedMail, provider: orm.Provider | None) -> tags.ParsedTags:
    return read_tags(mail, tags.labels_for(provider.tag_labels if provider else None))


def task_id_named(found: tags.ParsedTags, mail: ParsedMail) -> int | None:
    """The task of the `TaskId` tag, else of `[Task #id]` in the subject."""
    value = found.values.get("task_id", "").strip().lstrip("#")
    if value:
        if not value.isdigit():
            raise InvalidInput(f"the TaskId tag {value[:40]!r} is not a number", field="TaskId")
        return int(value)
    return tags.task_id_from_subject(mail.subject)


def authentication_problem(uow, task_id: int, found: tags.ParsedTags,
                           provider: orm.Provider, mail: ParsedMail) -> str | None:
    """Why the mail does not prove it answers our mail about the task (None: it does)."""
    token = found.values.get("token", "")
    if token and check_task_token(uow.context.settings.secret_key, task_id, token):
        return None
    if provider.trust_sender and provider.email and mail.from_addr == provider.email.lower():
        return None  # the provider is set to trust its sender address instead
    if not token:
        return "missing Token tag: a reply must keep the Token of our mail"
    return f"the Token does not match task {task_id} (forged or altered)"


def request_type_of(found: tags.ParsedTags) -> str:
    action = found.values.get("action", "").strip().lower()
    if action in TAG_ACTIONS:
        return str(TAG_ACTIONS[action])
    if found.values.get("external_reference"):
        return str(RequestType.ACKNOWLEDGEMENT)
    return str(RequestType.UPDATE)


def named_task(uow, mail: ParsedMail) -> tuple[int, int | None, str] | None:
    """For a mail rejected before its tags were read: (task, its provider, request type) of
    the task it names, when that exists, so the rejection shows on the task (CONTRACT §5).
    Proves nothing about the sender."""
    found = tags_of(mail, labels_provider(uow, None, mail))
    try:
        task_id = task_id_named(found, mail)
    except InvalidInput:
        return None
    task = uow.session.get(orm.Task, task_id) if task_id is not None else None
    if task is None:
        return None
    provider = task.group.provider if task.group is not None else None
    return task.id, provider.id if provider else None, request_type_of(found)
