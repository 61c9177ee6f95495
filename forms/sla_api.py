"""REST for provider SLAs: targets (`/api/v1/providers/<id>/sla-targets`), weekly figures as
JSON and CSV (`/api/v1/sla/figures[.csv]`) and recent breaches. Views parse, call one use
case, and shape the answer."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from engine.exceptions import InvalidInput, LiaisonError
from engine.services import sla
from forms.api import body, core, roles
from forms.csv_export import csv_response
from forms.errors import liaison_error_response, validation_error_response
from forms.schemas_ops import SlaTargetsIn

sla_api = Blueprint("sla_api", __name__, url_prefix="/api/v1")


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", field=name)
    return int(raw)


def figure_args() -> dict:
    return {"weeks": int_arg("weeks", 12, 1, sla.MAX_WEEKS),
            "provider": request.args.get("provider") or None,
            "priority": request.args.get("priority") or None}


@sla_api.get("/providers/<int:provider_id>/sla-targets")
@roles("integration_manager")
def get_targets(provider_id: int):
    return jsonify(core().run(sla.get_targets, provider_id))


@sla_api.put("/providers/<int:provider_id>/sla-targets")
@roles("integration_manager")
def put_targets(provider_id: int):
    return jsonify(core().run(sla.set_targets, provider_id, body(SlaTargetsIn)["targets"]))


@sla_api.get("/sla/figures")
@roles("integration_manager")
def figures():
    return jsonify(core().run(sla.figures, **figure_args()))


@sla_api.get("/sla/figures.csv")
@roles("integration_manager")
def figures_csv():
    result = core().run(sla.figures, **figure_args())
    return csv_response(result["rows"], sla.FIGURE_COLUMNS, "sla-figures.csv")


@sla_api.get("/sla/breaches")
@roles("integration_manager")
def breaches():
    return jsonify(core().run(sla.recent_breaches, request.args.get("provider") or None,
                              int_arg("limit", 100, 1, 1000)))


sla_api.register_error_handler(LiaisonError, liaison_error_response)
sla_api.register_error_handler(ValidationError, validation_error_response)
