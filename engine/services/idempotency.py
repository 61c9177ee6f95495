"""Idempotent API requests: a request repeated under the same `Idempotency-Key` (per API
token) is answered with the first answer instead of being applied again.

The record of a request is written in the same transaction as the request's effects (a
`RequestClaim` joins the request's committing use case, see `engine.unit_of_work`), so a
crash can never leave effects without their record or a record without its effects. The
HTTP answer is added to the record right after; should the process die in between, a repeat
runs the request's use case once more, finds the record, and answers with the first result
without committing anything. Records expire after `RETENTION` and are purged by a job.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken

from engine.exceptions import InvalidInput

RETENTION = timedelta(hours=24)
HEADER = "Idempotency-Key"
MAX_KEY = 200


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidInput(f"{HEADER} must be 1 to {MAX_KEY} printable characters", field=HEADER)
    return key


def _cipher(secret_key: str) -> Fernet:
    digest = hashlib.sha256(f"idempotency-records:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _seal(uow, data: bytes) -> bytes:
    return _cipher(uow.context.settings.secret_key).encrypt(data)


def _open(uow, data: bytes | None) -> bytes | None:
    if data is None:
        return None
    try:
        return _cipher(uow.context.settings.secret_key).decrypt(data)
    except InvalidToken:  # the secret key changed since: the answer is gone, not garbage
        return None


def _reused(key: str) -> InvalidInput:
    return InvalidInput(f"{HEADER} {key[:60]!r} was already used for a different request; "
                        "use a new key for a new request", field=HEADER)


def _live_record(uow, scope: str, key: str, now: datetime):
    record = uow.repo.idempotency_record(scope, key)
    if record is not None and record.expires_at <= now:
        uow.repo.delete_idempotency_record(record.id)
        return None
    return record


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes


@dataclass(frozen=True)
class Lookup:
    applied: bool  # a live record exists: the request was applied
    answer: Answer | None  # its first answer, once kept


def first_answer(uow, scope: str, key: str, request_hash: str) -> Lookup:
    """Whether this request was applied, and its first answer once kept; refuses a key
    reused for a different request (422)."""
    record = uow.repo.idempotency_record(scope, key)
    if record is None or record.expires_at <= uow.context.clock.now():
        return Lookup(False, None)
    if record.request_hash != request_hash:
        raise _reused(key)
    body = _open(uow, record.response)
    if record.status_code is None or body is None:
        return Lookup(True, None)
    return Lookup(True, Answer(record.status_code, body))


def store_answer(uow, scope: str, key: str, status_code: int, body: bytes) -> None:
    """Keeps the HTTP answer of an applied request (once: the first answer stays)."""
    record = uow.repo.idempotency_record(scope, key)
    if record is None or record.status_code is not None:
        return
    record.status_code, record.response = status_code, _seal(uow, body)
    uow.commit()


def purge_expired(uow, now: datetime) -> int:
    """Deletes the records whose retention ended; returns how many."""
    removed = uow.repo.purge_idempotency_records(now)
    uow.commit()
    return removed


@dataclass
class RequestClaim:
    """Joins the request's committing use case (engine.unit_of_work.Claim)."""

    scope: str
    key: str
    request_hash: str
    settled: bool = False
    replayed: bool = False

    def record(self, uow, result: object) -> object:
        now = uow.context.clock.now()
        existing = _live_record(uow, self.scope, self.key, now)
        if existing is not None:
            if existing.request_hash != self.request_hash:
                raise _reused(self.key)
            earlier = _open(uow, existing.result)
            self.replayed = True
            return json.loads(earlier) if earlier is not None else None
        uow.repo.insert_idempotency_record(
            scope=self.scope, key=self.key, request_hash=self.request_hash,
            result=_seal(uow, json.dumps(result, default=str).encode()),
            created_at=now, expires_at=now + RETENTION)
        return result
