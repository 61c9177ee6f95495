"""One unit of work per use case: a session and one commit.

`run_in_transaction` retries a use case when optimistic locking detects a concurrent change
(the whole use case re-runs on fresh rows, so no update is lost).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.adapters.repositories import Repository
from engine.exceptions import ConcurrentUpdate

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRIES = 6


class UnitOfWork:
    """A session with explicit commit; rolled back when the block fails."""

    def __init__(self, session_factory: sessionmaker[Session], context=None) -> None:
        self._factory = session_factory
        self.context = context  # the Core: settings, runtime, channels, clock
        self.session: Session | None = None
        self.repo: Repository | None = None
        self.after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self.repo = Repository(self.session)
        self.after_commit = []
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.session is None:
            return
        if exc_type is not None:
            self.session.rollback()
        self.session.close()
        self.session = None

    def commit(self) -> None:
        if self.session is None:
            raise RuntimeError("commit outside a unit of work")
        self.session.commit()
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a wake-up hint must never undo a committed change
                log.exception("after-commit callback failed")


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, StaleDataError):
        return True
    if isinstance(exc, IntegrityError):
        # Two identical inbound requests raced: the retry finds the first and answers duplicate.
        return "idempotency" in str(exc.orig).lower()
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return "deadlock" in text or "could not serialize" in text or "database is locked" in text
    return False


def run_in_transaction(uow_factory: Callable[[], UnitOfWork], use_case: Callable[[UnitOfWork], T]) -> T:
    """Runs `use_case(uow)` in a fresh unit of work, retrying on a lost optimistic lock."""
    for attempt in range(RETRIES):
        uow = uow_factory()
        try:
            with uow:
                return use_case(uow)
        except Exception as exc:
            if not _is_retryable(exc):
                raise
            log.info("concurrent update, retrying (attempt %d): %s", attempt + 1, exc)
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
    raise ConcurrentUpdate("the record was changed by someone else too often; try again")
