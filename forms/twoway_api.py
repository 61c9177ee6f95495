"""REST of the two-way link (CONTRACT §7): the link manager (sites and devices), the inbound
queue and switch, error reports, the callback endpoint, and *Create/Update ticket in
<provider>* for a task. Views parse, call one use case, and shape the answer.

Reading is open to agents, designers and integration managers; linking, unlinking, refreshing
and replaying need `admin` or `integration_manager` (403 otherwise).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

from engine.exceptions import LiaisonError
from engine.services import inbound_queue, inbound_settings, links, psa_inbound, task_links
from forms.api import actor, core, roles, visible_groups
from forms.errors import json_object, liaison_error_response, validation_error_response

twoway_api = Blueprint("twoway_api", __name__, url_prefix="/api/v1")

READERS = ("agent", "integration_manager", "designer")
MANAGERS = ("integration_manager",)  # and admin


class _Strict(Schema):
    class Meta:
        unknown = "raise"


class SiteLinkIn(_Strict):
    customer_id = fields.Integer(strict=True, allow_none=True)
    create = fields.Boolean(load_default=False)


class DeviceLinkIn(_Strict):
    asset_id = fields.Integer(strict=True, allow_none=True)
    create = fields.Boolean(load_default=False)


class ProviderTicketIn(_Strict):
    provider = fields.String(required=True, validate=validate.Length(min=1, max=120))
    note = fields.String(required=True, validate=validate.Length(min=1, max=100_000))


def _body(schema: type[Schema]) -> dict:
    data = json_object()
    return schema().load(data)


# -- the link manager -------------------------------------------------------------------------

@twoway_api.get("/providers/<int:provider_id>/sites")
@roles(*READERS)
def list_sites(provider_id: int):
    return jsonify(core().run(links.list_sites, provider_id))


@twoway_api.put("/providers/<int:provider_id>/sites/<external_id>/link")
@roles(*MANAGERS)
def link_site(provider_id: int, external_id: str):
    data = _body(SiteLinkIn)
    return jsonify(core().run(links.link_site, provider_id, external_id,
                              data.get("customer_id"), data["create"]))


@twoway_api.delete("/providers/<int:provider_id>/sites/<external_id>/link")
@roles(*MANAGERS)
def unlink_site(provider_id: int, external_id: str):
    return jsonify(core().run(links.unlink_site, provider_id, external_id))


@twoway_api.get("/providers/<int:provider_id>/devices")
@roles(*READERS)
def list_devices(provider_id: int):
    return jsonify(core().run(links.list_devices, provider_id))


@twoway_api.put("/providers/<int:provider_id>/devices/<external_id>/link")
@roles(*MANAGERS)
def link_device(provider_id: int, external_id: str):
    data = _body(DeviceLinkIn)
    return jsonify(core().run(links.link_device, provider_id, external_id,
                              data.get("asset_id"), data["create"]))


@twoway_api.delete("/providers/<int:provider_id>/devices/<external_id>/link")
@roles(*MANAGERS)
def unlink_device(provider_id: int, external_id: str):
    return jsonify(core().run(links.unlink_device, provider_id, external_id))


@twoway_api.post("/providers/<int:provider_id>/refresh")
@roles(*MANAGERS)
def refresh_sites(provider_id: int):
    return jsonify(psa_inbound.refresh_sites(core(), provider_id))


# -- the inbound queue ------------------------------------------------------------------------

@twoway_api.get("/providers/<int:provider_id>/inbound")
@roles(*READERS)
def inbound_status(provider_id: int):
    return jsonify(core().run(inbound_settings.inbound_status, provider_id))


@twoway_api.get("/providers/<int:provider_id>/inbound/items")
@roles(*MANAGERS)
def inbound_items(provider_id: int):
    return jsonify(core().run(inbound_queue.list_items, provider_id,
                              request.args.get("status") or None))


@twoway_api.post("/providers/<int:provider_id>/inbound/items/<int:item_id>/replay")
@roles(*MANAGERS)
def replay_item(provider_id: int, item_id: int):
    return jsonify(core().run(inbound_queue.replay_item, provider_id, item_id))


@twoway_api.post("/psa-callbacks/<key>")
@twoway_api.post("/psa-callbacks/<key>/<path:_record>")
def psa_callback(key: str, _record: str = ""):
    """ConnectWise's callback: only a hint. A wrong key is 404 and changes nothing; the body is
    never trusted (the poller fetches the tickets)."""
    return jsonify(core().run(psa_inbound.callback_hint, key))


# -- a task's ticket at a provider ------------------------------------------------------------

@twoway_api.post("/tasks/<int:task_id>/provider-ticket")
@roles("agent")
def provider_ticket(task_id: int):
    data = _body(ProviderTicketIn)
    core().run(task_links.visible_task, task_id, visible_groups())
    return jsonify(core().run(task_links.send_to_provider, task_id, data["provider"],
                              data["note"], actor())), 202


twoway_api.register_error_handler(LiaisonError, liaison_error_response)
twoway_api.register_error_handler(ValidationError, validation_error_response)
