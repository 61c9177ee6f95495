"""marshmallow schemas for the REST edge (the domain never sees them)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from engine.domain.events import ALL_BINDINGS

Text = fields.String


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class TicketIn(StrictSchema):
    title = Text(required=True, validate=validate.Length(min=1, max=500))
    description = Text(load_default="", validate=validate.Length(max=100_000))
    customer = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))


class TaskIn(StrictSchema):
    title = Text(required=True, validate=validate.Length(min=1, max=500))
    description = Text(load_default="", validate=validate.Length(max=100_000))
    group = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=120))
    priority = Text(load_default="normal", validate=validate.OneOf(["low", "normal", "high",
                                                                    "critical"]))


class AssignIn(StrictSchema):
    group = Text(required=True, validate=validate.Length(min=1, max=120))


class UpdateIn(StrictSchema):
    text = Text(required=True, validate=validate.Length(min=1, max=100_000))


class CloseIn(StrictSchema):
    solution = Text(required=True, validate=validate.Length(min=1, max=100_000))


class DeclineIn(StrictSchema):
    reason = Text(required=True, validate=validate.Length(min=1, max=100_000))


class ConnectionIn(StrictSchema):
    """A ConnectWise connection (CONTRACT §7); checked in full by the service."""

    url = Text(validate=validate.Length(min=1, max=500))
    company_id = Text(validate=validate.Length(min=1, max=120))
    public_key = Text(validate=validate.Length(min=1, max=200))
    private_key = Text(validate=validate.Length(min=1, max=200), load_only=True)
    client_id = Text(validate=validate.Length(min=1, max=200))


class PsaSettingsIn(StrictSchema):
    """Organisation-wide ConnectWise settings: names as ConnectWise knows them (documentation;
    the service checks them against ConnectWise's look-ups)."""

    board = Text(allow_none=True)
    service_type = Text(allow_none=True)
    priority = Text(allow_none=True)
    contact = Text(allow_none=True)
    auto_close = fields.Boolean()
    closed_status = Text(allow_none=True)
    company = Text(allow_none=True)


class ProviderIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=80))
    channel = Text(required=True, validate=validate.OneOf(["soap", "email", "connectwise"]))
    endpoint_url = fields.Url(load_default=None, allow_none=True, require_tld=False,
                              schemes={"http", "https"})
    email = fields.Email(load_default=None, allow_none=True)
    trust_sender = fields.Boolean(load_default=False)
    tag_labels = fields.Dict(keys=Text(validate=validate.OneOf(
        ["task_id", "external_reference", "token", "action"])),
        values=Text(validate=validate.Regexp(r"^[\w-]{1,40}$")), load_default=dict)
    connection = fields.Nested(ConnectionIn, load_default=None, allow_none=True)


class ProviderPatch(ProviderIn):
    """Any of the provider's fields but its name; `inbound_enabled` / `inbound_group` (CONTRACT
    §7) may also be changed by an integration manager."""

    inbound_enabled = fields.Boolean()
    inbound_group = Text(allow_none=True, validate=validate.Length(max=120))

    class Meta:
        unknown = RAISE
        exclude = ("name",)


class GroupIn(StrictSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=80))
    integrated = fields.Boolean(load_default=False)
    provider = Text(load_default=None, allow_none=True)
    processes = fields.Dict(keys=Text(validate=validate.OneOf(ALL_BINDINGS)),
                            values=Text(validate=validate.Length(min=1, max=200)),
                            load_default=dict)


class TaskOut(Schema):
    id = fields.Integer()
    ticket_id = fields.Integer()
    title = Text()
    description = Text()
    group = Text(allow_none=True)
    status = Text(metadata={"enum": ["open", "closed"]})
    external_reference = Text(allow_none=True)
    solution = Text(allow_none=True)
    priority = Text()


class ExchangeOut(Schema):
    id = fields.Integer()
    request_type = Text()
    direction = Text()
    channel = Text()
    status = Text(metadata={"enum": ["pending", "delivered", "failed", "rejected"]})
    attempts = fields.Integer()
    at = fields.DateTime()


class InstanceOut(Schema):
    id = fields.Integer()
    process_id = Text()
    event = Text()
    status = Text(metadata={"enum": ["running", "waiting", "completed", "error"]})


class ErrorOut(Schema):
    error = fields.Dict()


# -- customers and assets (CONTRACT §7) -------------------------------------------------------
# Lengths are checked again on the trimmed values by the use cases; these bound the input.
CUSTOMER_NAME = validate.Length(min=1, max=200)
NOTES = validate.Length(max=100_000)


class CustomerIn(StrictSchema):
    name = Text(required=True, validate=CUSTOMER_NAME)
    notes = Text(allow_none=True, validate=NOTES)


class AssetIn(StrictSchema):
    name = Text(required=True, validate=CUSTOMER_NAME)
    serial = Text(allow_none=True, validate=validate.Length(max=200))
    manufacturer = Text(allow_none=True, validate=validate.Length(max=200))
    type = Text(allow_none=True, validate=validate.Length(max=100))
    notes = Text(allow_none=True, validate=NOTES)


class CustomerPatch(CustomerIn):
    """Any of a customer's fields; those left out keep their value."""

    name = Text(validate=CUSTOMER_NAME)


class AssetPatch(AssetIn):
    """Any of an asset's fields; those left out keep their value."""

    name = Text(validate=CUSTOMER_NAME)


class MergeIn(StrictSchema):
    into = fields.Integer(required=True, strict=True)


class CustomerOut(Schema):
    id = fields.Integer()
    name = Text()
    own = fields.Boolean()
    notes = Text()
    asset_count = fields.Integer()


class AssetOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    name = Text()
    serial = Text(allow_none=True)
    manufacturer = Text(allow_none=True)
    type = Text(allow_none=True)
    notes = Text()
