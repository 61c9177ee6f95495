"""REST for ConnectWise providers (CONTRACT §7): test-connection, settings, mappings,
look-ups, agreement sync, error reports. Views parse, call one use case, shape the answer.

Admins and integration managers change things; agents may read settings and mappings.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import ValidationError

from engine.exceptions import LiaisonError
from engine.services import (
    psa_agreements,
    psa_connection,
    psa_customers,
    psa_lookups,
    psa_reports,
    psa_settings,
)
from forms.api import core, roles
from forms.errors import json_object, liaison_error_response, validation_error_response

psa_api = Blueprint("psa_api", __name__, url_prefix="/api/v1")
READERS = ("integration_manager", "agent")


def _object() -> dict:
    data = json_object()
    return data


@psa_api.get("/providers/<int:provider_id>")
@roles(*READERS)
def get_provider(provider_id: int):
    return jsonify(core().run(psa_reports.provider_detail, provider_id))


@psa_api.post("/providers/<int:provider_id>/test-connection")
@roles("integration_manager")
def test_connection(provider_id: int):
    result = psa_connection.check_connection(core(), provider_id)
    # CONTRACT §7: exactly {"ok": true} or {"ok": false, "error"}; the web page names the version
    return jsonify({key: result[key] for key in ("ok", "error") if key in result})


@psa_api.get("/providers/<int:provider_id>/lookups")
@roles(*READERS)
def get_lookups(provider_id: int):
    return jsonify(core().run(psa_lookups.lookups_view, provider_id))


@psa_api.post("/providers/<int:provider_id>/lookups/refresh")
@roles("integration_manager")
def refresh_lookups(provider_id: int):
    return jsonify(psa_lookups.refresh(core(), provider_id))


@psa_api.get("/providers/<int:provider_id>/settings")
@roles(*READERS)
def get_settings(provider_id: int):
    return jsonify(core().run(psa_settings.get_settings, provider_id))


@psa_api.put("/providers/<int:provider_id>/settings")
@roles("integration_manager")
def put_settings(provider_id: int):
    values = _object()
    psa_lookups.ensure(core(), provider_id)  # names are checked against ConnectWise's lists
    return jsonify(core().run(psa_settings.put_settings, provider_id, values))


@psa_api.get("/providers/<int:provider_id>/mappings/<kind>")
@roles(*READERS)
def get_mapping(provider_id: int, kind: str):
    return jsonify(core().run(psa_settings.get_mapping, provider_id, kind))


@psa_api.put("/providers/<int:provider_id>/mappings/<kind>")
@roles("integration_manager")
def put_mapping(provider_id: int, kind: str):
    pairs = _object()
    psa_lookups.ensure(core(), provider_id)
    return jsonify(core().run(psa_settings.put_mapping, provider_id, kind, pairs))


@psa_api.get("/providers/<int:provider_id>/errors")
@roles("integration_manager")
def provider_errors(provider_id: int):
    return jsonify(core().run(psa_reports.provider_errors, provider_id))


@psa_api.get("/customers/<int:customer_id>/providers/<int:provider_id>/settings")
@roles(*READERS)
def get_customer_settings(customer_id: int, provider_id: int):
    return jsonify(core().run(psa_customers.get_customer_settings, customer_id, provider_id))


@psa_api.put("/customers/<int:customer_id>/providers/<int:provider_id>/settings")
@roles("integration_manager")
def put_customer_settings(customer_id: int, provider_id: int):
    values = _object()
    psa_lookups.ensure(core(), provider_id)
    return jsonify(core().run(psa_customers.put_customer_settings, customer_id, provider_id,
                              values))


@psa_api.delete("/customers/<int:customer_id>/providers/<int:provider_id>/settings")
@roles("integration_manager")
def reset_customer_settings(customer_id: int, provider_id: int):
    return jsonify(core().run(psa_customers.delete_customer_settings, customer_id,
                              provider_id))


@psa_api.post("/providers/<int:provider_id>/agreement-sync")
@roles("integration_manager")
def agreement_sync(provider_id: int):
    return jsonify(psa_agreements.sync_provider(core(), provider_id, "manual"))


@psa_api.get("/providers/<int:provider_id>/agreement-sync")
@roles(*READERS)
def agreement_sync_reports(provider_id: int):
    return jsonify(core().run(psa_agreements.sync_reports, provider_id))


psa_api.register_error_handler(LiaisonError, liaison_error_response)
psa_api.register_error_handler(ValidationError, validation_error_response)
