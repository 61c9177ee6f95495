"""REST for operators' tools: group members (`/api/v1/groups/<name>/members`), the exchange
log as CSV, dry-runs of a process version against history and the migration of waiting
instances to it. Views parse, call one use case, and shape the answer."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from engine.exceptions import LiaisonError
from engine.services import dry_run, exchange_log, membership, migration
from forms.api import actor, body, core, roles
from forms.csv_export import csv_response
from forms.errors import liaison_error_response, validation_error_response
from forms.schemas_ops import DryRunIn, MembersIn, MigrationIn

ops_api = Blueprint("ops_api", __name__, url_prefix="/api/v1")
EXCHANGE_FILTERS = ("request_type", "direction", "status", "channel")


@ops_api.get("/groups/<name>/members")
@roles("integration_manager")
def get_members(name: str):
    return jsonify(core().run(membership.members, name))


@ops_api.put("/groups/<name>/members")
@roles()
def put_members(name: str):
    return jsonify(core().run(membership.replace_members, name, body(MembersIn)["users"]))


@ops_api.get("/exchanges.csv")
@roles("integration_manager")
def exchanges_csv():
    filters = {k: request.args.get(k) for k in EXCHANGE_FILTERS}
    rows = exchange_log.export_rows(core(), filters, request.args.get("provider"))
    return csv_response(rows, exchange_log.CSV_COLUMNS, "exchanges.csv")


@ops_api.post("/process-models/<int:model_id>/dry-run")
@roles("designer", "integration_manager")
def dry_run_model(model_id: int):
    data = body(DryRunIn)
    return jsonify(dry_run.run_model(core(), model_id, data["group"], data["tasks"],
                                     data["event"]))


@ops_api.get("/process-models/<int:model_id>/migration")
@roles("designer", "integration_manager")
def migration_preview(model_id: int):
    return jsonify(core().run(migration.preview, model_id, request.args.get("group") or None))


@ops_api.post("/process-models/<int:model_id>/migration")
@roles("designer")
def migrate_instances(model_id: int):
    data = body(MigrationIn)
    return jsonify(core().run(migration.migrate, model_id, data["group"], data["instances"],
                              actor()))


ops_api.register_error_handler(LiaisonError, liaison_error_response)
ops_api.register_error_handler(ValidationError, validation_error_response)
