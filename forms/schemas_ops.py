"""marshmallow schemas of the REST endpoints for operations: SLA targets, dry-runs, instance
migration, group members. Their values are checked again by the use cases (422 naming the
field); these describe the shapes, for the edge and the OpenAPI document."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from engine.domain.events import ALL_BINDINGS


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class SlaTargetIn(Schema):
    metric = fields.String(required=True, metadata={"enum": ["acknowledge", "resolve"]})
    priority = fields.String(allow_none=True, metadata={
        "enum": ["low", "normal", "high", "critical", None],
        "description": "null: every priority without a target of its own"})
    minutes = fields.Integer(required=True, metadata={"minimum": 1, "maximum": 527040})


class SlaTargetsIn(StrictSchema):
    # Raw items: the use case checks each one and names the field (targets[1].minutes).
    targets = fields.List(fields.Raw(metadata={
        "allOf": [{"$ref": "#/components/schemas/SlaTargetIn"}]}), required=True)


class DryRunIn(StrictSchema):
    group = fields.String(required=True, validate=validate.Length(min=1, max=120))
    tasks = fields.Integer(load_default=20, strict=True,
                           validate=validate.Range(min=1, max=200))
    event = fields.String(load_default=None, allow_none=True,
                          validate=validate.OneOf(ALL_BINDINGS), metadata={
                              "description": "the binding to try the model for, when the group "
                                             "does not bind its process yet"})


class MigrationIn(StrictSchema):
    group = fields.String(load_default=None, allow_none=True)
    instances = fields.List(fields.Integer(strict=True), load_default=None, allow_none=True,
                            metadata={"description": "only these instances (default: every "
                                                     "migratable one)"})


class MembersIn(StrictSchema):
    users = fields.List(fields.String(validate=validate.Length(min=1, max=80)), required=True)


SCHEMAS = {"SlaTargetIn": SlaTargetIn, "SlaTargetsIn": SlaTargetsIn, "DryRunIn": DryRunIn,
           "MigrationIn": MigrationIn, "MembersIn": MembersIn}

# (method, path, summary, request schema, success status, response schema, many): see openapi.py
OPERATIONS = [
    ("get", "/providers/{id}/sla-targets", "A provider's SLA targets", None, 200, None, False),
    ("put", "/providers/{id}/sla-targets", "Replace a provider's SLA targets (minutes 1 to a "
     "year; 422 names the field)", "SlaTargetsIn", 200, None, False),
    ("get", "/sla/figures", "SLA figures per provider and week: count, completed, p50, p90, "
     "breaches (?weeks=12&provider=&priority=)", None, 200, None, False),
    ("get", "/sla/figures.csv", "The same figures as CSV", None, 200, None, False),
    ("get", "/sla/breaches", "Recent SLA breaches (?provider=&limit=)", None, 200, None, True),
    ("post", "/process-models/{id}/dry-run", "Replay a group's recent tasks into this version "
     "(nothing sent or stored) and report the differences", "DryRunIn", 200, None, False),
    ("get", "/process-models/{id}/migration", "Preview: waiting instances of other versions "
     "that may move to this one (?group=), and the skipped ones", None, 200, None, False),
    ("post", "/process-models/{id}/migration", "Move waiting instances to this version",
     "MigrationIn", 200, None, False),
    ("get", "/groups/{name}/members", "A group's members", None, 200, None, False),
    ("put", "/groups/{name}/members", "Replace a group's members", "MembersIn", 200, None,
     False),
    ("get", "/exchanges.csv", "All exchanges as CSV (filters as GET /exchanges)", None, 200,
     None, False),
]
