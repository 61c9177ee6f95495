"""`Idempotency-Key` on every POST of the REST API, whatever blueprint serves it.

A client that lost its connection repeats the request with the same key (and the same
token): it gets the first answer, and the request is applied once. The same key with a
different request is refused (422 naming the header). Two copies arriving together are
applied once too: the record's unique key lets one commit, and the other then answers with
the first one's result. See `engine.services.idempotency` for how records are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from flask import Flask, Response, current_app, g, request

from engine.domain.credentials import token_hash
from engine.services import idempotency
from engine.unit_of_work import join_claim, leave_claim

log = logging.getLogger(__name__)

PREFIX = "/api/"
REPLAYED_HEADER = "Idempotent-Replayed"
ANSWER_WAIT = 2.0  # seconds a repeat waits for the answer of a copy still in flight


def init_app(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)


def _core():
    return current_app.extensions["liaison"]


def _scope() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token_hash(token) if scheme.lower() == "bearer" and token else None


def fingerprint() -> str:
    """What makes two requests the same: method, path and query, and the body's content
    (JSON compared as data; form fields and uploaded files by their content)."""
    digest = hashlib.sha256(f"{request.method} {request.full_path}\n".encode())
    # JSON whatever its Content-Type (forms.errors.json_object reads it so); reading a
    # urlencoded form here would consume the body the view then parses as JSON
    data = None if request.mimetype == "multipart/form-data" else \
        request.get_json(force=True, silent=True)
    if data is not None:
        digest.update(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    elif request.mimetype == "multipart/form-data":
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"form {name}={value}\n".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            content = upload.stream.read()
            upload.stream.seek(0)
            digest.update(f"file {name} {upload.filename} ".encode())
            digest.update(hashlib.sha256(content).digest())
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(answer: idempotency.Answer) -> Response:
    response = current_app.response_class(answer.body, status=answer.status_code,
                                          mimetype="application/json")
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _first_answer(scope: str, key: str, request_hash: str) -> idempotency.Answer | None:
    deadline = time.monotonic() + ANSWER_WAIT
    while True:
        found = _core().run(idempotency.first_answer, scope, key, request_hash)
        if found.answer is not None or not found.applied:
            return found.answer
        if time.monotonic() > deadline:  # applied, and its answer was lost with its process
            return None
        time.sleep(0.05)


def _before():
    key = request.headers.get(idempotency.HEADER)
    if request.method != "POST" or key is None or not request.path.startswith(PREFIX):
        return None
    key = idempotency.check_key(key)
    scope = _scope()
    if scope is None:
        return None  # not authenticated: the view answers 401 and nothing is kept
    request_hash = fingerprint()
    answer = _first_answer(scope, key, request_hash)
    if answer is not None:
        return _replay(answer)
    claim = idempotency.RequestClaim(scope, key, request_hash)
    g.idempotency_claim = claim
    g.idempotency_token = join_claim(claim)
    return None


def _after(response: Response) -> Response:
    claim = g.get("idempotency_claim")
    if claim is None or not claim.settled:
        return response  # nothing was applied: a repeat runs again
    core = _core()
    if claim.replayed:
        found = core.run(idempotency.first_answer, claim.scope, claim.key, claim.request_hash)
        if found.answer is not None:
            return _replay(found.answer)
    try:
        core.run(idempotency.store_answer, claim.scope, claim.key, response.status_code,
                 response.get_data())
    except Exception as exc:  # applied all the same: a repeat finds the record's result
        log.warning("answer of idempotent request not kept: %s", exc)
    return response


def _teardown(_exc) -> None:
    token = g.pop("idempotency_token", None)
    if token is not None:
        leave_claim(token)
