"""Process models and instances as the web shows them, and user-task forms."""

from __future__ import annotations

import json

from engine.exceptions import NotFound
from engine.services import queries
from engine.services.views import instance_view, model_view


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


def _form_definition(model, step: dict) -> dict | None:
    # the step's own form name (formJsonSchemaFilename), else a file named after the step
    names = [step.get("form"), f"{model.process_id}-{step.get('id')}.json",
             f"{step.get('id')}.json"]
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
