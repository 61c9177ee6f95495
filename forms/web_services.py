"""Use cases the web pages need that engine/services does not offer (yet).

Written as services are: `(uow, ...)`, repository calls only, one commit. They belong in
engine/services (auth.py, queries.py, admin.py) and can move there unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from lxml import etree

from engine.exceptions import InvalidInput, NotAuthenticated, NotFound
from engine.services import admin, queries, tasks
from engine.services.views import group_view, instance_view, model_view

MAX_FAILED_LOGINS = 5
LOCK_FOR = timedelta(minutes=15)
BAD_LOGIN = "invalid user name or password"
_dummy_hash: list[str] = []


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _session_view(uow, user) -> dict:
    return {"id": user.id, "name": user.name, "role": user.role,
            "group_ids": sorted(uow.repo.group_ids_of_user(user.id))}


def login_with_password(uow, name: str, password: str) -> dict:
    """Checks a password; after MAX_FAILED_LOGINS failures the account is locked for LOCK_FOR."""
    user = uow.repo.user_by_name(name)
    now = uow.context.clock.now()
    if user is None:
        if not _dummy_hash:
            _dummy_hash.append(admin.hash_password("not a password"))
        admin.verify_password(_dummy_hash[0], password)  # as slow as for a real user
        raise NotAuthenticated(BAD_LOGIN)
    locked_until = _aware(user.locked_until)
    if locked_until and locked_until > now:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        raise NotAuthenticated(f"too many failed attempts: this account is locked for "
                               f"{minutes} more minute(s)")
    if not admin.verify_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.failed_logins, user.locked_until = 0, now + LOCK_FOR
        uow.commit()
        raise NotAuthenticated(BAD_LOGIN)
    user.failed_logins, user.locked_until = 0, None
    uow.commit()
    return _session_view(uow, user)


def session_user(uow, user_id: int) -> dict | None:
    """The signed-in user's name, role and groups; None once the user is gone."""
    user = uow.repo.user_by_id(user_id)
    return _session_view(uow, user) if user is not None else None


def list_users(uow) -> list[dict]:
    now = uow.context.clock.now()
    names = {g.id: g.name for g in uow.repo.groups()}
    return [{"id": u.id, "name": u.name, "role": u.role,
             "locked": bool(_aware(u.locked_until) and _aware(u.locked_until) > now),
             "groups": sorted(names[i] for i in uow.repo.group_ids_of_user(u.id) if i in names)}
            for u in uow.repo.users()]


def unlock_user(uow, name: str) -> None:
    """Lifts a lock-out before it runs out."""
    user = uow.repo.user_by_name(name)
    if user is None:
        raise NotFound(f"user {name!r} not found")
    user.failed_logins, user.locked_until = 0, None
    uow.commit()


def _group(uow, name: str):
    group = uow.repo.group_by_name(name)
    if group is None:
        raise NotFound(f"group {name!r} not found")
    return group


def group_detail(uow, name: str) -> dict:
    """A group with its members, and every user (to pick members from)."""
    group = _group(uow, name)
    return {**group_view(group), "members": [u.name for u in uow.repo.members_of(group.id)],
            "users": [{"name": u.name, "role": u.role} for u in uow.repo.users()]}


def set_group_members(uow, name: str, user_names: list[str]) -> list[str]:
    """Replaces a group's members."""
    group = _group(uow, name)
    users = [uow.repo.user_by_name(n) for n in user_names]
    unknown = [n for n, u in zip(user_names, users, strict=True) if u is None]
    if unknown:
        raise InvalidInput(f"unknown users: {', '.join(unknown)}", field="members")
    uow.repo.set_members(group.id, {u.id for u in users})
    uow.commit()
    return sorted(user_names)


def open_ticket(uow, title: str, description: str, customer: str | None, group: str,
                actor: str) -> dict:
    """Opens a ticket with its first task for a group (the agent's "new ticket" form)."""
    _group(uow, group)  # checked first, so a bad group leaves no orphan ticket
    ticket = tasks.create_ticket(uow, title, description, customer)
    return tasks.create_task(uow, ticket["id"], title, description, group=group, actor=actor)


def model_detail(uow, model_id: int) -> dict:
    """One version of a process model, its BPMN text and forms, and all its versions."""
    model = uow.repo.model(model_id)
    versions = [model_view(m) for m in uow.repo.models() if m.process_id == model.process_id]
    return {**model_view(model), "bpmn_xml": bytes(model.bpmn_xml).decode("utf-8", "replace"),
            "forms": dict(model.forms or {}), "versions": versions}


def visible_instance(uow, instance_id: int, group_ids: set[int] | None) -> dict:
    """A process instance, if its task is one the user may see."""
    instance = uow.repo.instance(instance_id)
    if instance.task_id is not None:
        queries.task_detail(uow, instance.task_id, group_ids)
    return instance_view(instance)


_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_FORM_PROPERTY = ("//bpmn:userTask[@id=$id]//spiffworkflow:property"
                  "[@name='formJsonSchemaFilename']/@value")
_NAMESPACES = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
               "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


def _form_property(model, element_id: str) -> str | None:
    """The user task's `formJsonSchemaFilename` (spiff-arena's way of naming its form)."""
    try:
        root = etree.fromstring(bytes(model.bpmn_xml), parser=_SAFE_XML)
    except etree.XMLSyntaxError:
        return None
    found = root.xpath(_FORM_PROPERTY, namespaces=_NAMESPACES, id=element_id)
    return str(found[0]) if found else None


def _form_definition(model, step: dict) -> dict | None:
    names = [step.get("form") or _form_property(model, step.get("id", "")),
             f"{model.process_id}-{step.get('id')}.json", f"{step.get('id')}.json"]
    forms = model.forms or {}
    text = next((forms[n] for n in names if n and n in forms), None)
    if text is None:
        return None
    try:
        definition = json.loads(text)
    except ValueError:
        return None
    return definition if isinstance(definition, dict) else None


def user_task_form(uow, instance_id: int, element_id: str, group_ids: set[int] | None) -> dict:
    """The form definition (JSON stored with the model) of an open user task."""
    instance = uow.repo.instance(instance_id)
    if instance.task_id is not None:
        queries.task_detail(uow, instance.task_id, group_ids)
    step = next((s for s in instance.current_steps or []
                 if s.get("id") == element_id and s.get("type") == "userTask"), None)
    if step is None:
        raise NotFound(f"instance {instance_id} has no open user task {element_id!r}")
    model = uow.repo.model(instance.model_id)
    return {"instance_id": instance.id, "task_id": instance.task_id, "step": step,
            "definition": _form_definition(model, step) or {}}


def task_page_with_forms(uow, task_id: int, group_ids: set[int] | None) -> dict:
    """The task page, plus a form for every user task waiting in its instances."""
    page = queries.task_page(uow, task_id, group_ids)
    forms = []
    for instance in page["instances"]:
        for step in instance["current_steps"]:
            if step.get("type") == "userTask":
                model = uow.repo.model(instance["model_id"])
                forms.append({"instance_id": instance["id"], "step": step,
                              "definition": _form_definition(model, step) or {}})
    return {**page, "user_forms": forms, "groups": queries.list_groups(uow)}
