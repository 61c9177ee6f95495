"""Maps the engine's exceptions to HTTP once; no stack trace ever reaches a client."""

from __future__ import annotations

import logging

from flask import jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine.exceptions import (
    BpmnInvalid,
    Busy,
    ConcurrentUpdate,
    Conflict,
    InvalidInput,
    LiaisonError,
    MalformedRequest,
    NotAuthenticated,
    NotAuthorized,
    NotFound,
    PayloadTooLarge,
)

log = logging.getLogger(__name__)

STATUS = [(PayloadTooLarge, 413), (MalformedRequest, 400), (BpmnInvalid, 422), (InvalidInput, 422),
          (NotFound, 404), (NotAuthenticated, 401), (NotAuthorized, 403), (ConcurrentUpdate, 409),
          (Busy, 409), (Conflict, 409)]


def json_object() -> dict:
    """The request's JSON object, whatever Content-Type the client sent (curl -d sends a
    form's); anything else is a 400."""
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise MalformedRequest("the body must be a JSON object", field="body")
    return data


def status_for(exc: LiaisonError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def liaison_error_response(exc: LiaisonError):
    if isinstance(exc, BpmnInvalid):  # CONTRACT §3: the list stands beside "error"
        body = {**error_body(exc.code, exc.message), "errors": exc.errors}
    elif isinstance(exc, InvalidInput) and exc.field:
        body = error_body(exc.code, exc.message, field=exc.field)
    else:
        body = error_body(exc.code, exc.message)
    return jsonify(body), status_for(exc)


def validation_error_response(exc: ValidationError):
    messages = exc.normalized_messages()
    first = next(iter(messages.items()), ("body", ["invalid"]))
    text = first[1][0] if isinstance(first[1], list) and first[1] else str(first[1])
    return jsonify(error_body("InvalidInput", f"{first[0]}: {text}", field=first[0],
                              fields=messages)), 422


def http_error_response(exc: HTTPException):
    code = (exc.name or "Error").replace(" ", "")
    return jsonify(error_body(code, exc.description or exc.name or "error")), exc.code or 500


def unexpected_error_response(exc: Exception):
    log.exception("unexpected error")
    return jsonify(error_body("InternalError", "internal error; it has been logged")), 500
