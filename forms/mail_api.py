"""REST for the e-mail channel: automated e-mail rules (`/api/v1/mail-rules`) and the inbound
mail log (`/api/v1/mail-messages`). Views parse, call one use case, and shape the answer."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from engine.exceptions import InvalidInput, LiaisonError
from engine.services import mail_outcome, mail_rules
from forms.api import core, roles
from forms.errors import json_object, liaison_error_response, validation_error_response

mail_api = Blueprint("mail_api", __name__, url_prefix="/api/v1")

STATUSES = ["pending", "applied", "rejected", "skipped", "duplicate", "failed"]


class ConditionIn(Schema):
    class Meta:
        unknown = RAISE

    field = fields.String(required=True, validate=validate.OneOf(["from", "to", "subject",
                                                                  "body"]))
    match = fields.String(load_default="contains", validate=validate.OneOf(["contains",
                                                                            "regex"]))
    value = fields.String(required=True, validate=validate.Length(min=1, max=500))


class MailRuleIn(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    conditions = fields.List(fields.Nested(ConditionIn), required=True,
                             validate=validate.Length(min=1, max=20))
    action = fields.String(required=True, validate=validate.OneOf(mail_rules.ACTIONS))
    provider = fields.String(load_default=None, allow_none=True)
    group = fields.String(load_default=None, allow_none=True)
    account = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=200))
    enabled = fields.Boolean(load_default=True)
    position = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=1))


def _rule_body() -> dict:
    data = json_object()
    return MailRuleIn().load(data)


@mail_api.get("/mail-rules")
@roles("integration_manager")
def list_mail_rules():
    return jsonify(core().run(mail_rules.list_rules))


@mail_api.post("/mail-rules")
@roles("integration_manager")
def create_mail_rule():
    return jsonify(core().run(mail_rules.create_rule, **_rule_body())), 201


@mail_api.get("/mail-rules/<int:rule_id>")
@roles("integration_manager")
def get_mail_rule(rule_id: int):
    return jsonify(core().run(mail_rules.get_rule, rule_id))


@mail_api.put("/mail-rules/<int:rule_id>")
@roles("integration_manager")
def update_mail_rule(rule_id: int):
    return jsonify(core().run(mail_rules.update_rule, rule_id, **_rule_body()))


@mail_api.delete("/mail-rules/<int:rule_id>")
@roles("integration_manager")
def delete_mail_rule(rule_id: int):
    core().run(mail_rules.delete_rule, rule_id)
    return "", 204


@mail_api.get("/mail-messages")
@roles("integration_manager")
def list_mail_messages():
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    return jsonify(core().run(mail_outcome.list_messages, status))


mail_api.register_error_handler(LiaisonError, liaison_error_response)
mail_api.register_error_handler(ValidationError, validation_error_response)
