"""marshmallow schemas for the web forms, and user-task forms built from their JSON definition.

A user-task form definition is a small JSON Schema, as spiff-arena writes them:
`{"title", "description", "required": [...], "properties": {name: {"type", "title",
"description", "enum", "default", "minLength", "maxLength", "minimum", "maximum",
"multiline"}}}` with types string, integer, number and boolean.
"""

from __future__ import annotations

from datetime import UTC

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

from engine.domain.events import ALL_BINDINGS
from engine.domain.tags import DEFAULT_LABELS
from engine.services.admin import ROLES

Text = fields.String
NAME = validate.Length(min=1, max=80)
LONG_TEXT = validate.Length(min=1, max=100_000)
LABEL = validate.Regexp(r"^[\w-]{1,40}$", error="letters, digits, - or _ (at most 40)")


class FormSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # buttons and other browser extras are not errors


class LoginIn(FormSchema):
    name = Text(required=True, validate=NAME)
    password = Text(required=True, validate=validate.Length(max=1000))
    next = Text(load_default=None)


class TaskFilterIn(FormSchema):
    group = Text(load_default=None)
    status = Text(load_default="open", validate=validate.OneOf(["open", "closed", "all"]))
    q = Text(load_default=None, validate=validate.Length(max=200))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))


class NewTicketIn(FormSchema):
    title = Text(required=True, validate=validate.Length(min=1, max=500))
    description = Text(load_default="", validate=validate.Length(max=100_000))
    customer = Text(load_default=None, validate=validate.Length(max=200))
    group = Text(required=True, validate=NAME)


class AssignIn(FormSchema):
    group = Text(required=True, validate=NAME)


class UpdateIn(FormSchema):
    text = Text(required=True, validate=LONG_TEXT)


class CloseIn(FormSchema):
    solution = Text(required=True, validate=LONG_TEXT)


class DeclineIn(FormSchema):
    reason = Text(required=True, validate=LONG_TEXT)


class ProviderIn(FormSchema):
    name = Text(required=True, validate=NAME)
    channel = Text(required=True, validate=validate.OneOf(["soap", "email", "connectwise"]))
    endpoint_url = fields.Url(load_default=None, require_tld=False, schemes={"http", "https"})
    email = fields.Email(load_default=None)
    trust_sender = fields.Boolean(load_default=False)
    label_task_id = Text(load_default=None, validate=LABEL)
    label_external_reference = Text(load_default=None, validate=LABEL)
    label_token = Text(load_default=None, validate=LABEL)
    label_action = Text(load_default=None, validate=LABEL)

    @post_load
    def collect_labels(self, data: dict, **_) -> dict:
        labels = {key: data.pop(f"label_{key}") for key in DEFAULT_LABELS}
        data["tag_labels"] = {k: v for k, v in labels.items() if v and v != DEFAULT_LABELS[k]}
        return data


class GroupIn(FormSchema):
    name = Text(required=True, validate=NAME)
    integrated = fields.Boolean(load_default=False)
    provider = Text(load_default=None)
    processes = fields.Dict(load_default=dict)

    @post_load
    def drop_blank_processes(self, data: dict, **_) -> dict:
        data["processes"] = {k: v for k, v in data["processes"].items() if v}
        return data


def group_form(form) -> dict:
    """The group form sends `process_<event>` fields; the schema wants one `processes` dict."""
    data = {k: v for k, v in form.items() if not k.startswith("process_")}
    data["processes"] = {event: form.get(f"process_{event}", "") for event in ALL_BINDINGS}
    return GroupIn().load(data)


class MembersIn(FormSchema):
    members = fields.List(Text(validate=NAME), load_default=list)


class UserIn(FormSchema):
    name = Text(required=True, validate=NAME)
    role = Text(required=True, validate=validate.OneOf(ROLES))
    password = Text(required=True, validate=validate.Length(
        min=8, max=1000, error="must have at least 8 characters (at most 1000)"))


class ExchangeFilterIn(FormSchema):
    provider = Text(load_default=None)
    request_type = Text(load_default=None)
    direction = Text(load_default=None, validate=validate.OneOf(["In", "Out"]))
    status = Text(load_default=None, validate=validate.OneOf(
        ["pending", "delivered", "failed", "rejected"]))
    since = fields.DateTime(load_default=None)
    until = fields.DateTime(load_default=None)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))

    @post_load
    def utc_times(self, data: dict, **_) -> dict:
        for key in ("since", "until"):
            if data[key] is not None and data[key].tzinfo is None:
                data[key] = data[key].replace(tzinfo=UTC)  # the form's times are UTC
        return data


class CustomerFilterIn(FormSchema):
    q = Text(load_default=None, validate=validate.Length(max=200))


class CustomerIn(FormSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    notes = Text(load_default=None, validate=validate.Length(max=100_000))


class MergeIn(FormSchema):
    into = fields.Integer(required=True)


# -- user-task forms --------------------------------------------------------------------

_TYPES = {"string": fields.String, "integer": fields.Integer, "number": fields.Float,
          "boolean": fields.Boolean}


def _validators(spec: dict) -> list:
    checks = []
    if "enum" in spec:
        checks.append(validate.OneOf(spec["enum"]))
    if "minLength" in spec or "maxLength" in spec:
        checks.append(validate.Length(min=spec.get("minLength"), max=spec.get("maxLength")))
    if "minimum" in spec or "maximum" in spec:
        checks.append(validate.Range(min=spec.get("minimum"), max=spec.get("maximum")))
    return checks


def form_fields(definition: dict) -> list[dict]:
    """The fields of a form definition, in order, ready for the template."""
    required = set(definition.get("required") or [])
    result = []
    for name, spec in (definition.get("properties") or {}).items():
        if not isinstance(spec, dict) or spec.get("type", "string") not in _TYPES:
            continue
        kind = spec.get("type", "string")
        widget = ("select" if "enum" in spec else "checkbox" if kind == "boolean"
                  else "number" if kind in ("integer", "number")
                  else "textarea" if spec.get("multiline") else "text")
        result.append({"name": name, "title": spec.get("title") or name, "widget": widget,
                       "description": spec.get("description", ""), "required": name in required,
                       "options": spec.get("enum", []), "default": spec.get("default"),
                       "step": "1" if kind == "integer" else "any"})
    return result


def user_task_schema(definition: dict) -> type[Schema]:
    """A marshmallow schema that validates a user-task form on the server."""
    required = set(definition.get("required") or [])
    declared = {}
    for field in form_fields(definition):
        spec = definition["properties"][field["name"]]
        kind = _TYPES[spec.get("type", "string")]
        options = {"validate": _validators(spec)}
        if field["widget"] == "checkbox":
            options["load_default"] = False
        elif field["name"] in required:
            options["required"] = True
        else:
            options["load_default"] = spec.get("default")
            options["allow_none"] = True
        declared[field["name"]] = kind(**options)
    return FormSchema.from_dict(declared, name="UserTaskForm")
