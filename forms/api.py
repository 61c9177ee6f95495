"""REST API /api/v1 (CONTRACT §3). Views parse, call one use case, and shape the answer."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

from engine.exceptions import InvalidInput, LiaisonError, NotAuthorized, PayloadTooLarge
from engine.services import admin, models, outbox, queries, tasks
from engine.services.inbound_settings import INBOUND_FIELDS
from forms import schemas
from forms.errors import (
    json_object,
    liaison_error_response,
    validation_error_response,
)
from forms.openapi import openapi_document

api = Blueprint("api", __name__, url_prefix="/api/v1")


def core():
    return current_app.extensions["liaison"]


def body(schema: type[schemas.Schema], partial: bool = False) -> dict:
    data = json_object()
    return schema().load(data, partial=partial)


def roles(*allowed: str):
    """Bearer-token auth; `admin` may do everything."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            user = core().run(queries.authenticate_token,
                              token.strip() if scheme.lower() == "bearer" else "")
            if user["role"] != "admin" and user["role"] not in allowed:
                raise NotAuthorized(f"role {user['role']} may not do this")
            g.user = user
            return view(*args, **kwargs)
        return wrapper
    return decorate


def actor() -> str:
    return g.user["name"]


def visible_groups() -> set[int] | None:
    return g.user["group_ids"] if g.user["role"] == "agent" else None


@api.get("/health")
def health():
    return jsonify(status="ok")


@api.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@api.post("/process-models")
@roles("designer")
def upload_process_model():
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput("send the BPMN file as multipart field 'file'", field="file")
    limit = core().settings.bpmn_max_bytes
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the file has more than {limit:,} bytes; at most {limit:,} "
                              "are allowed", field="file")
    result = core().run(models.deploy_process_model, data, upload.filename or "upload.bpmn",
                        actor())
    result.pop("created")
    return jsonify(result), 201


@api.get("/process-models")
@roles("designer", "agent", "integration_manager")
def list_process_models():
    return jsonify(core().run(queries.list_models))


@api.post("/providers")
@roles()
def create_provider():
    return jsonify(core().run(admin.create_provider, **body(schemas.ProviderIn))), 201


@api.patch("/providers/<int:provider_id>")
@roles("integration_manager")
def update_provider(provider_id: int):
    changes = body(schemas.ProviderPatch, partial=True)
    if g.user["role"] != "admin" and set(changes) - set(INBOUND_FIELDS):
        # integration managers switch inbound on and off; the rest is the admin's
        raise NotAuthorized(f"role {g.user['role']} may change only {', '.join(INBOUND_FIELDS)}")
    return jsonify(core().run(admin.update_provider, provider_id, changes))


@api.get("/providers")
@roles("integration_manager")
def list_providers():
    return jsonify(core().run(queries.list_providers))


@api.post("/groups")
@roles()
def create_group():
    return jsonify(core().run(admin.create_group, **body(schemas.GroupIn))), 201


@api.get("/groups")
@roles("agent", "integration_manager", "designer")
def list_groups():
    return jsonify(core().run(queries.list_groups))


@api.post("/tickets")
@roles("agent")
def create_ticket():
    return jsonify(core().run(tasks.create_ticket, **body(schemas.TicketIn))), 201


@api.get("/tickets/<int:ticket_id>")
@roles("agent", "integration_manager")
def get_ticket(ticket_id: int):
    return jsonify(core().run(queries.ticket_with_tasks, ticket_id, visible_groups()))


@api.post("/tickets/<int:ticket_id>/tasks")
@roles("agent")
def create_task(ticket_id: int):
    data = body(schemas.TaskIn)
    return jsonify(core().run(tasks.create_task, ticket_id, actor=actor(), **data)), 201


@api.get("/tasks")
@roles("agent", "integration_manager")
def list_tasks():
    page = request.args.get("page", "1")
    if not page.isdigit() or int(page) < 1:
        raise InvalidInput("page must be a positive integer", field="page")
    return jsonify(core().run(queries.list_tasks, visible_groups(), request.args.get("status"),
                              request.args.get("q"), int(page)))


@api.get("/tasks/<int:task_id>")
@roles("agent", "integration_manager")
def get_task(task_id: int):
    return jsonify(core().run(queries.task_detail, task_id, visible_groups()))


def _task_action(task_id: int, use_case, schema, field: str):
    value = body(schema)[field]
    core().run(queries.task_detail, task_id, visible_groups())  # 404 outside the agent's groups
    return jsonify(core().run(use_case, task_id, value, actor=actor()))


@api.post("/tasks/<int:task_id>/assign")
@roles("agent")
def assign_task(task_id: int):
    return _task_action(task_id, tasks.assign_task, schemas.AssignIn, "group")


@api.post("/tasks/<int:task_id>/updates")
@roles("agent")
def add_update(task_id: int):
    return _task_action(task_id, tasks.add_update, schemas.UpdateIn, "text")


@api.post("/tasks/<int:task_id>/close")
@roles("agent")
def close_task(task_id: int):
    return _task_action(task_id, tasks.close_task, schemas.CloseIn, "solution")


@api.post("/tasks/<int:task_id>/decline-solution")
@roles("agent")
def decline_solution(task_id: int):
    return _task_action(task_id, tasks.decline_solution, schemas.DeclineIn, "reason")


@api.get("/tasks/<int:task_id>/exchanges")
@roles("agent", "integration_manager")
def task_exchanges(task_id: int):
    core().run(queries.task_detail, task_id, visible_groups())
    return jsonify(core().run(queries.exchanges_of_task, task_id))


@api.get("/exchanges")
@roles("integration_manager")
def list_exchanges():
    filters = {k: request.args.get(k) for k in ("request_type", "direction", "status", "channel")}
    return jsonify(core().run(queries.list_exchanges, filters, request.args.get("provider")))


@api.get("/exchanges/<int:exchange_id>")
@roles("integration_manager", "agent")
def get_exchange(exchange_id: int):
    return jsonify(core().run(queries.exchange_detail, exchange_id, visible_groups()))


@api.post("/exchanges/<int:exchange_id>/replay")
@roles("integration_manager")
def replay_exchange(exchange_id: int):
    return jsonify(core().run(outbox.replay_exchange, exchange_id))


@api.get("/process-instances")
@roles("agent", "integration_manager", "designer")
def list_instances():
    task_id = request.args.get("task_id", "")
    if not task_id.isdigit():
        raise InvalidInput("task_id query parameter (an integer) is required", field="task_id")
    return jsonify(core().run(queries.instances_of_task, int(task_id)))


@api.get("/process-instances/<int:instance_id>")
@roles("agent", "integration_manager", "designer")
def get_instance(instance_id: int):
    return jsonify(core().run(queries.instance_detail, instance_id))


api.register_error_handler(LiaisonError, liaison_error_response)
api.register_error_handler(ValidationError, validation_error_response)
