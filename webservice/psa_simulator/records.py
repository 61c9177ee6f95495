"""What the simulated ConnectWise does with the records liaison writes: tickets, notes, status
changes and agreement additions, validated the way ConnectWise validates them (400
`InvalidObject` with `errors[]` naming each field)."""

from __future__ import annotations

from webservice.psa_simulator.state import State, now_iso


class ApiFailure(Exception):
    """An answer other than success: HTTP status and ConnectWise's JSON body."""

    def __init__(self, status: int, body: dict, headers: dict | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status, self.body, self.headers = status, body, headers or {}


def invalid(resource: str, errors: list[dict]) -> ApiFailure:
    return ApiFailure(400, {"code": "InvalidObject", "message": f"{resource} object is invalid",
                            "errors": errors})


def field_error(resource: str, field: str, message: str, code: str = "InvalidField") -> dict:
    return {"code": code, "message": message, "resource": resource, "field": field}


def not_found(what: str) -> ApiFailure:
    return ApiFailure(404, {"code": "NotFound", "message": f"{what} not found"})


def display_name(record: dict) -> str:
    if "firstName" in record:
        return f"{record['firstName']} {record.get('lastName', '')}".strip()
    return str(record.get("name") or record.get("identifier") or "")


def reference(record: dict, table: str) -> dict:
    ref = {"id": record["id"], "name": display_name(record)}
    if table == "companies":
        ref["identifier"] = record["identifier"]
    if table == "catalog":
        ref = {"id": record["id"], "identifier": record["identifier"]}
    return ref


def _matches(record: dict, wanted: dict) -> bool:
    if "id" in wanted and wanted["id"] is not None:
        return record["id"] == wanted["id"]
    if wanted.get("identifier"):
        return str(record.get("identifier", "")).lower() == str(wanted["identifier"]).lower()
    if wanted.get("name"):
        return display_name(record).lower() == str(wanted["name"]).lower()
    return False


def resolve(state: State, table: str, wanted, field: str, errors: list, resource: str = "ticket",
            scope: dict | None = None) -> dict | None:
    """The record a reference (`{"id"}`, `{"name"}`, `{"identifier"}`) names; unknown adds an
    error for `field`."""
    if wanted is None:
        return None
    if not isinstance(wanted, dict):
        errors.append(field_error(resource, field, f"{field} must be a reference object"))
        return None
    for record in state.rows(table):
        if scope and any(record.get(k, {}).get("id") != v for k, v in scope.items()):
            continue
        if _matches(record, wanted):
            return record
    errors.append(field_error(resource, field, f"{field.capitalize()} not found"))
    return None


def _ticket_refs(state: State, body: dict, errors: list) -> dict:
    boards = state.rows("boards")
    board = resolve(state, "boards", body.get("board"), "board", errors) or (
        boards[0] if body.get("board") is None else None)
    scope = {"board": board["id"]} if board else None
    refs = {"board": board,
            "company": resolve(state, "companies", body.get("company"), "company", errors),
            "contact": resolve(state, "contacts", body.get("contact"), "contact", errors),
            "priority": resolve(state, "priorities", body.get("priority"), "priority", errors),
            "type": resolve(state, "types", body.get("type"), "type", errors, scope=scope),
            "status": resolve(state, "statuses", body.get("status"), "status", errors,
                              scope=scope)}
    if body.get("company") is None:
        errors.append(field_error("ticket", "company", "The company field is required.",
                                  "MissingRequiredField"))
    if board and refs["status"] is None and body.get("status") is None:
        refs["status"] = next((s for s in state.rows("statuses")
                               if s["board"]["id"] == board["id"] and s.get("defaultFlag")), None)
    if refs["priority"] is None and body.get("priority") is None:
        refs["priority"] = next((p for p in state.rows("priorities") if p.get("defaultFlag")),
                                None)
    return refs


def create_ticket(state: State, body: dict) -> dict:
    errors: list[dict] = []
    summary = body.get("summary")
    if not summary or not str(summary).strip():
        errors.append(field_error("ticket", "summary", "The summary field is required.",
                                  "MissingRequiredField"))
    elif len(str(summary)) > 100:
        errors.append(field_error("ticket", "summary", "summary may not exceed 100 characters"))
    if len(str(body.get("externalXRef") or "")) > 100:
        errors.append(field_error("ticket", "externalXRef",
                                  "externalXRef may not exceed 100 characters"))
    with state.lock:
        refs = _ticket_refs(state, body, errors)
        if errors:
            raise invalid("ticket", errors)
        tables = {"board": "boards", "company": "companies", "contact": "contacts",
                  "priority": "priorities", "type": "types", "status": "statuses"}
        ticket = {"summary": summary, "recordType": "ServiceTicket",
                  **{name: reference(record, tables[name])
                     for name, record in refs.items() if record is not None},
                  "externalXRef": body.get("externalXRef"), "closedFlag": False,
                  "closedDate": None, "source": {"name": "API"}}
        ticket = state.insert("tickets", ticket, save=False)
        if body.get("initialDescription"):
            state.insert("notes", {"ticketId": ticket["id"], "text": body["initialDescription"],
                                   "detailDescriptionFlag": True, "internalAnalysisFlag": False,
                                   "resolutionFlag": False, "createdBy": state.member,
                                   "dateCreated": now_iso()}, save=False)
        state.save()
        return ticket


def _board_status(state: State, ticket: dict, value, by: str) -> dict:
    for status in state.rows("statuses"):
        if status["board"]["id"] != ticket["board"]["id"]:
            continue
        if (by == "id" and status["id"] == value) or (
                by == "name" and str(status["name"]).lower() == str(value).lower()):
            return status
    raise invalid("ticket", [field_error("ticket", "status", f"Status {value!r} is not a status "
                                                            f"of board {ticket['board']['name']}")])


def patch_ticket(state: State, ticket_id: int, operations) -> dict:
    with state.lock:
        ticket = state.get("tickets", ticket_id)
        if ticket is None:
            raise not_found(f"Ticket {ticket_id}")
        if not isinstance(operations, list):
            raise invalid("ticket", [field_error("ticket", "body", "expected a JSON Patch list")])
        for operation in operations:
            _apply(state, ticket, operation)
        state.touch(ticket)
        return ticket


def _apply(state: State, ticket: dict, operation: dict) -> None:
    path = str(operation.get("path", "")).strip("/").lower()
    value = operation.get("value")
    if operation.get("op") != "replace":
        raise invalid("ticket", [field_error("ticket", path, "only replace is supported here")])
    if path in ("status/name", "status/id", "status"):
        by = "id" if path == "status/id" else "name"
        value = value.get(by) if isinstance(value, dict) else value
        status = _board_status(state, ticket, value, by)
        ticket["status"] = reference(status, "statuses")
        ticket["closedFlag"] = bool(status["closedStatus"])
        ticket["closedDate"] = now_iso() if status["closedStatus"] else None
    elif path in ("summary",):
        ticket["summary"] = str(value)[:100]
    elif path in ("priority/name", "priority/id"):
        errors: list = []
        priority = resolve(state, "priorities", {path.split("/")[1]: value}, "priority", errors)
        if errors:
            raise invalid("ticket", errors)
        ticket["priority"] = reference(priority, "priorities")
    else:
        raise invalid("ticket", [field_error("ticket", path, f"cannot change {path!r} here")])


def add_note(state: State, ticket_id: int, body: dict) -> dict:
    if state.get("tickets", ticket_id) is None:
        raise not_found(f"Ticket {ticket_id}")
    if not str(body.get("text") or "").strip():
        raise invalid("note", [field_error("note", "text", "The text field is required.",
                                           "MissingRequiredField")])
    flags = ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")
    if not any(body.get(flag) for flag in flags):
        raise ApiFailure(400, {"code": "InvalidObject", "message": "note object is invalid",
                               "errors": [field_error("note", "detailDescriptionFlag",
                                                      "Please choose where to display the "
                                                      "notes.")]})
    return state.insert("notes", {"ticketId": ticket_id, "text": body["text"],
                                  **{flag: bool(body.get(flag)) for flag in flags},
                                  "createdBy": state.member, "dateCreated": now_iso()})


def add_addition(state: State, agreement_id: int, body: dict) -> dict:
    if state.get("agreements", agreement_id) is None:
        raise not_found(f"Agreement {agreement_id}")
    errors: list[dict] = []
    product = resolve(state, "catalog", body.get("product"), "product", errors,
                      resource="addition")
    if body.get("product") is None:
        errors.append(field_error("addition", "product", "The product field is required.",
                                  "MissingRequiredField"))
    quantity = body.get("quantity")
    if not isinstance(quantity, int | float) or quantity < 0:
        errors.append(field_error("addition", "quantity", "quantity must be a number ≥ 0"))
    if errors:
        raise invalid("addition", errors)
    return state.insert("additions", {"agreementId": agreement_id,
                                      "product": reference(product, "catalog"),
                                      "quantity": quantity,
                                      "billCustomer": body.get("billCustomer", "Billable"),
                                      "effectiveDate": now_iso()})


def patch_addition(state: State, agreement_id: int, addition_id: int, operations) -> dict:
    with state.lock:
        addition = state.get("additions", addition_id)
        if addition is None or addition["agreementId"] != agreement_id:
            raise not_found(f"Addition {addition_id}")
        for operation in operations if isinstance(operations, list) else []:
            path = str(operation.get("path", "")).strip("/").lower()
            value = operation.get("value")
            if path != "quantity" or not isinstance(value, int | float) or value < 0:
                raise invalid("addition", [field_error("addition", path or "body",
                                                       "only /quantity (a number ≥ 0) may "
                                                       "change here")])
            addition["quantity"] = value
        state.touch(addition)
        return addition
