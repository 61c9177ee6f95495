"""The designer's pages: upload BPMN (+ form JSON), versions, diagram, process variables."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import flash, make_response, redirect, render_template, request, url_for

from engine.domain.events import EVENTS, Event, TaskSnapshot, process_variables
from engine.exceptions import BpmnInvalid, InvalidInput
from engine.services import models, queries
from engine.services.user_tasks import model_detail, visible_instance
from forms.web_common import actor, core, roles, visible_groups
from forms.web_errors import new_blueprint

bp = new_blueprint("web_designer", __name__)
VIEWER = Path(__file__).parent / "static" / "vendor" / "bpmn-js"
VIEWER_FILE = "bpmn-navigated-viewer.production.min.js"
# What engine/services/inbound.py hands to a waiting catch event (its messageVariable).
MESSAGE_PAYLOAD = {
    "external_acknowledgement": ["task_id", "external_reference"],
    "external_update": ["task_id", "message", "external_reference"],
    "external_reassignment": ["task_id", "solution", "message", "external_reference"],
}


@cache
def variables_catalogue() -> dict:
    """The variables every process receives (CONTRACT §2), and per event what it sets."""
    sample_task = TaskSnapshot(id=1, ticket_id=1, title="", description="", group=None,
                               status="open", external_reference=None, solution=None,
                               priority="normal", customer=None)
    variables = process_variables(Event(EVENTS["new_assignment"]), sample_task,
                                  {"id": 1, "title": "", "customer": None},
                                  {"name": "", "channel": ""})
    events = [{"event": kind.name, "binding": kind.binding,
               "request_type": str(kind.request_type or "—"), "direction": str(kind.direction or "—"),
               "message": kind.message, "payload": MESSAGE_PAYLOAD.get(kind.name, [])}
              for kind in EVENTS.values()]
    return {"variables": {top: list(value) for top, value in variables.items()},
            "events": events}


def viewer_installed() -> bool:
    return (VIEWER / VIEWER_FILE).is_file()


def _read_forms(uploads) -> dict:
    forms = {}
    for upload in uploads:
        if not upload or not upload.filename:
            continue
        name = Path(upload.filename).name
        try:
            definition = json.loads(upload.read(256 * 1024).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"form {name}: not valid JSON ({exc})", field="forms") from None
        if not isinstance(definition, dict):
            raise InvalidInput(f"form {name}: must be a JSON object", field="forms")
        forms[name] = json.dumps(definition)
    return forms


def _listing(status: int = 200, errors: list | None = None, filename: str = ""):
    body = render_template("designer/models.html", models=core().run(queries.list_models),
                           catalogue=variables_catalogue(), errors=errors or [],
                           filename=filename)
    return body, status


@bp.get("/process-models")
@roles("designer", "agent", "integration_manager")
def models_page():
    return _listing()


@bp.post("/process-models")
@roles("designer")
def upload():
    bpmn = request.files.get("file")
    if bpmn is None or not bpmn.filename:
        return _listing(422, [{"message": "choose a .bpmn file to upload", "line": None}])
    try:
        data = bpmn.read(core().settings.bpmn_max_bytes + 1)
        result = core().run(models.deploy_process_model, data, bpmn.filename, actor(),
                            _read_forms(request.files.getlist("forms")))
    except BpmnInvalid as exc:
        return _listing(422, exc.errors, bpmn.filename)
    except InvalidInput as exc:
        return _listing(422, [{"message": exc.message, "line": None}], bpmn.filename)
    flash(f"{result['process_id']} deployed as version {result['version']}.", "ok")
    return redirect(url_for("web_designer.model_page", model_id=result["id"]))


@bp.get("/process-models/<int:model_id>")
@roles("designer", "agent", "integration_manager")
def model_page(model_id: int):
    instance_id = request.args.get("instance", "")
    instance = (core().run(visible_instance, int(instance_id), visible_groups())
                if instance_id.isdigit() else None)
    if instance is not None and instance["model_id"] != model_id:
        return redirect(url_for("web_designer.model_page", model_id=instance["model_id"],
                                instance=instance["id"]))
    return render_template("designer/model.html", model=core().run(model_detail, model_id),
                           instance=instance, viewer=viewer_installed(),
                           catalogue=variables_catalogue())


@bp.get("/process-models/<int:model_id>/bpmn")
@roles("designer", "agent", "integration_manager")
def model_bpmn(model_id: int):
    model = core().run(model_detail, model_id)
    response = make_response(model["bpmn_xml"])
    response.headers["Content-Type"] = "application/xml; charset=utf-8"
    response.headers.set("Content-Disposition", "attachment", filename=model["filename"])
    return response
