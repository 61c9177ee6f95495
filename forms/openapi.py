"""The OpenAPI document of /api/v1, built with apispec from the edge schemas."""

from __future__ import annotations

from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from forms import schemas, schemas_ops

# (method, path, summary, request schema, success status, response schema, many)
OPERATIONS = [
    ("get", "/health", "Liveness", None, 200, None, False),
    ("post", "/process-models", "Upload BPMN (multipart field 'file')", None, 201, None, False),
    ("get", "/process-models", "List process model versions", None, 200, None, True),
    ("post", "/providers", "Create a provider (password shown once)", "ProviderIn", 201, None,
     False),
    ("get", "/providers", "List providers", None, 200, None, True),
    ("patch", "/providers/{id}", "Change a provider's channel, addresses, labels", "ProviderPatch",
     200, None, False),
    ("post", "/groups", "Create a group", "GroupIn", 201, None, False),
    ("get", "/groups", "List groups", None, 200, None, True),
    ("post", "/tickets", "Create a ticket", "TicketIn", 201, None, False),
    ("get", "/tickets/{id}", "A ticket and its tasks", None, 200, None, False),
    ("post", "/tickets/{id}/tasks", "Add a task", "TaskIn", 201, "TaskOut", False),
    ("get", "/tasks", "List tasks (filters: status, q, page)", None, 200, None, False),
    ("get", "/tasks/{id}", "A task", None, 200, "TaskOut", False),
    ("post", "/tasks/{id}/assign", "Assign to a group", "AssignIn", 200, "TaskOut", False),
    ("post", "/tasks/{id}/updates", "Add update text", "UpdateIn", 200, "TaskOut", False),
    ("post", "/tasks/{id}/close", "Close with a solution", "CloseIn", 200, "TaskOut", False),
    ("post", "/tasks/{id}/decline-solution", "Decline a returned solution", "DeclineIn", 200,
     "TaskOut", False),
    ("get", "/tasks/{id}/exchanges", "Exchanges of a task", None, 200, "ExchangeOut", True),
    ("get", "/exchanges", "All exchanges (filters)", None, 200, "ExchangeOut", True),
    ("get", "/exchanges/{id}", "An exchange with its payload", None, 200, None, False),
    ("post", "/exchanges/{id}/replay", "Send an outbound exchange again", None, 200, None, False),
    ("get", "/process-instances", "Instances of a task (?task_id=)", None, 200, "InstanceOut",
     True),
    ("get", "/process-instances/{id}", "One process instance", None, 200, None, False),
    ("get", "/mail-rules", "Automated e-mail rules, in order", None, 200, None, True),
    ("post", "/mail-rules", "Add a rule (name, conditions[{field, match, value}], action "
     "detect|skip|assign_account, provider?, group?, account?, enabled?, position?)", None, 201,
     None, False),
    ("get", "/mail-rules/{id}", "One rule", None, 200, None, False),
    ("put", "/mail-rules/{id}", "Replace a rule", None, 200, None, False),
    ("delete", "/mail-rules/{id}", "Delete a rule", None, 204, None, False),
    ("get", "/mail-messages", "Inbound mail log (?status=)", None, 200, None, True),
    ("get", "/customers", "Customers, our own business first (?q= part of the name)", None, 200,
     "CustomerOut", True),
    ("post", "/customers", "Add a customer (unique name)", "CustomerIn", 201, "CustomerOut",
     False),
    ("get", "/customers/{id}", "One customer", None, 200, "CustomerOut", False),
    ("patch", "/customers/{id}", "Rename a customer or change its notes", "CustomerPatch", 200,
     "CustomerOut", False),
    ("post", "/customers/{id}/merge", "Merge into another customer (tickets, assets and site "
     "links move; this one is deleted)", "MergeIn", 200, "CustomerOut", False),
    ("get", "/customers/{id}/assets", "Assets of a customer", None, 200, "AssetOut", True),
    ("post", "/customers/{id}/assets", "Add an asset", "AssetIn", 201, "AssetOut", False),
    ("patch", "/customers/{id}/assets/{asset_id}", "Change an asset", "AssetPatch", 200, "AssetOut",
     False),
    ("delete", "/customers/{id}/assets/{asset_id}", "Delete an asset", None, 204, None, False),
    *schemas_ops.OPERATIONS,  # SLAs, dry-runs, instance migration, members, CSV
    # ConnectWise providers (CONTRACT §7)
    ("get", "/providers/{id}", "A provider (a ConnectWise connection without its private key)",
     None, 200, None, False),
    ("post", "/providers/{id}/test-connection", "Call ConnectWise once: {ok} or {ok: false, "
     "error}", None, 200, None, False),
    ("get", "/providers/{id}/lookups", "Cached boards, statuses, types, priorities, contacts, "
     "companies, products", None, 200, None, False),
    ("post", "/providers/{id}/lookups/refresh", "Fetch the look-ups from ConnectWise again",
     None, 200, None, False),
    ("get", "/providers/{id}/settings", "Organisation-wide settings", None, 200, None, False),
    ("put", "/providers/{id}/settings", "Replace them (board, service_type, priority, contact, "
     "auto_close, closed_status?, company?)", "PsaSettingsIn", 200, None, False),
    ("get", "/providers/{id}/mappings/{kind}", "A mapping (kind priority|service)", None, 200,
     None, False),
    ("put", "/providers/{id}/mappings/{kind}", "Set pairs {ours: theirs|null}; null is Not "
     "Assigned", None, 200, None, False),
    ("get", "/providers/{id}/errors", "Recent failures of the provider", None, 200, None, True),
    ("post", "/providers/{id}/agreement-sync", "Run the agreement-quantity sync now: {changed, "
     "unchanged, errors}", None, 200, None, False),
    ("get", "/providers/{id}/agreement-sync", "Reports of the last syncs", None, 200, None, True),
    ("get", "/customers/{cid}/providers/{pid}/settings", "A customer's settings at a provider: "
     "{effective, overrides, enabled}", None, 200, None, False),
    ("put", "/customers/{cid}/providers/{pid}/settings", "Override settings for a customer (any "
     "setting, company, agreement, enabled)", None, 200, None, False),
    ("delete", "/customers/{cid}/providers/{pid}/settings", "Back to the organisation "
     "defaults", None, 200, None, False),
    # the two-way link (CONTRACT §7)
    ("get", "/providers/{id}/sites", "The provider's sites, linked customer and suggestions", None,
     200, None, True),
    ("put", "/providers/{id}/sites/{external_id}/link", "Link a site: {customer_id} or "
     "{create: true} (admin, integration_manager)", None, 200, None, False),
    ("delete", "/providers/{id}/sites/{external_id}/link", "Unlink a site (and that customer's "
     "tickets and assets from the provider)", None, 200, None, False),
    ("get", "/providers/{id}/devices", "The provider's devices, linked asset and suggestions",
     None, 200, None, True),
    ("put", "/providers/{id}/devices/{external_id}/link", "Link a device: {asset_id} or "
     "{create: true}", None, 200, None, False),
    ("delete", "/providers/{id}/devices/{external_id}/link", "Unlink a device", None, 200, None,
     False),
    ("post", "/providers/{id}/refresh", "Download the provider's sites and devices now", None,
     200, None, False),
    ("get", "/providers/{id}/inbound", "Inbound switch, inbox group, callback URL, queue counts",
     None, 200, None, False),
    ("get", "/providers/{id}/inbound/items", "The inbound queue (?status=pending|done|skipped|"
     "error)", None, 200, None, True),
    ("post", "/providers/{id}/inbound/items/{item_id}/replay", "Put an inbound item that failed "
     "back in the queue", None, 200, None, False),
    ("post", "/psa-callbacks/{key}", "A PSA's callback (no bearer token; the key is the "
     "secret; the body is only a hint)", None, 200, None, False),
    ("post", "/tasks/{id}/provider-ticket", "Create/Update the task's ticket at a provider: "
     "{provider, note}", None, 202, None, False),
]


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Repeating the request with the same key (and token) answers the first "
                   "answer instead of applying it again; kept 24 hours. The same key with "
                   "another request: 422."}


def _operation(summary, request_schema, status, response_schema, many, path):
    op = {"summary": summary, "responses": {
        str(status): {"description": "OK"},
        "default": {"description": "Error",
                    "content": {"application/json": {"schema": "ErrorOut"}}}}}
    if response_schema:
        schema = {"type": "array", "items": response_schema} if many else response_schema
        op["responses"][str(status)]["content"] = {"application/json": {"schema": schema}}
    if request_schema:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": request_schema}}}
    names = [name for name in ("id", "asset_id", "cid", "pid", "item_id")
             if "{" + name + "}" in path]
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                  for name in names]
    for name in ("name", "kind", "external_id", "key"):
        if "{" + name + "}" in path:
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string"}})
    if parameters:
        op["parameters"] = parameters
    if path.startswith("/psa-callbacks"):
        return op
    if path != "/health":
        op["security"] = [{"bearer": []}]
    return op


@cache
def openapi_document() -> dict:
    spec = APISpec(title="liaison", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()], servers=[{"url": "/api/v1"}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    # ConnectionIn before ProviderIn, which nests it
    for name in ("ConnectionIn", "PsaSettingsIn", "ProviderIn", "ProviderPatch", "GroupIn",
                 "TicketIn", "TaskIn", "AssignIn", "UpdateIn", "CloseIn", "DeclineIn", "TaskOut",
                 "ExchangeOut", "InstanceOut", "ErrorOut", "CustomerIn", "CustomerPatch", "AssetIn",
                 "AssetPatch", "MergeIn", "CustomerOut", "AssetOut"):
        spec.components.schema(name, schema=getattr(schemas, name))
    for name, schema in schemas_ops.SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    paths: dict[str, dict] = {}
    for method, path, summary, req, status, resp, many in OPERATIONS:
        operation = _operation(summary, req, status, resp, many, path)
        if method == "post":  # forms/idempotency.py: every POST takes the key
            operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
        paths.setdefault(path, {})[method] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
