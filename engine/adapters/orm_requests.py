"""Tables of request idempotency: what an API client asked with an `Idempotency-Key`, and
the answer it got, so that a repeat is answered the same way instead of applied again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.adapters.orm import Base, utcnow


class IdempotencyRecord(Base):
    """One request applied under an Idempotency-Key of one API token. Written in the same
    transaction as the request's effects; its answer is added right after. `result` and
    `response` are encrypted with a key derived from the secret key (an answer may show a
    password once)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_records_scope_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))  # sha256 of the API token
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[bytes | None] = mapped_column()  # the use case's answer, until `response`
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[bytes | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
