"""One unit of work per use case: a session and one commit.

`run_in_transaction` re-runs a use case that lost a race to another writer, from scratch on
fresh rows, so no update is lost and nothing is half-applied:

- a *conflict* (optimistic version mismatch, a PostgreSQL serialization failure or deadlock,
  two identical requests inserting the same idempotency key) is retried up to `RETRIES`
  times with exponential backoff and full jitter, then answered `ConcurrentUpdate`;
- a *lock wait that reached its bound* (PostgreSQL `lock_timeout`, SQLite's busy timeout)
  is tried `LOCK_ATTEMPTS` times in all, then answered `Busy`: waiting longer would only
  pile more writers onto the same row.

Both errors say that nothing was applied, so the caller may repeat the request as it was.

An edge may ask that the effects of the next committing use case carry a record of the
request (an idempotency claim, see `join_claim`): the use case's `commit()` then only
flushes, the claim is written in the same transaction, and only then does it commit.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.adapters.repositories import Repository
from engine.exceptions import Busy, ConcurrentUpdate

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRIES = 6  # attempts in all for conflicts
LOCK_ATTEMPTS = 2  # attempts in all for lock waits that reached their bound
BACKOFF_BASE, BACKOFF_CAP = 0.01, 0.5  # seconds
DEFAULT_LOCK_TIMEOUT = 5.0

CONFLICT, LOCKED = "conflict", "locked"
_CONFLICT_STATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_LOCKED_STATES = {"55P03"}  # lock_not_available (lock_timeout, NOWAIT)


class Claim(Protocol):
    """A record that must be committed with the effects of the next committing use case."""

    settled: bool
    replayed: bool

    def record(self, uow: UnitOfWork, result: object) -> object:
        """Writes the record in `uow`'s transaction and returns `result`, or, when an earlier
        request already holds it, sets `replayed` and returns that request's result."""


_claim: ContextVar[Claim | None] = ContextVar("liaison_claim", default=None)


def join_claim(claim: Claim) -> Token:
    """Makes `claim` join the next committing use case run in this context (thread)."""
    return _claim.set(claim)


def leave_claim(token: Token) -> None:
    _claim.reset(token)


class UnitOfWork:
    """A session with explicit commit; rolled back when the block fails."""

    def __init__(self, session_factory: sessionmaker[Session], context=None) -> None:
        self._factory = session_factory
        self.context = context  # the Core: settings, runtime, channels, clock
        self.session: Session | None = None
        self.repo: Repository | None = None
        self.after_commit: list[Callable[[], None]] = []
        self.settles_claims = False  # set by run_in_transaction, which settles them
        self._pending_claim: Claim | None = None
        self._commits_held = 0

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        settings = getattr(self.context, "settings", None)
        self.session.info["lock_timeout"] = getattr(settings, "lock_timeout_seconds",
                                                    DEFAULT_LOCK_TIMEOUT)
        self.repo = Repository(self.session)
        self.after_commit = []
        self._pending_claim = None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.session is None:
            return
        if exc_type is not None:
            self.session.rollback()
        self.session.close()
        self.session = None

    @contextmanager
    def commits_held(self):
        """Use cases called inside this block commit nothing: their `commit()` only flushes,
        and the caller commits their effects together with its own (several outcomes of the
        outbox in one transaction). A failure in the block undoes them all."""
        self._commits_held += 1
        try:
            yield
        finally:
            self._commits_held -= 1

    def commit(self) -> None:
        if self.session is None:
            raise RuntimeError("commit outside a unit of work")
        if self._commits_held:
            self.session.flush()
            return
        claim = _claim.get() if self.settles_claims else None
        if claim is not None and not claim.settled:
            self.session.flush()  # ids and defaults for the use case's answer
            self._pending_claim = claim
            return
        self._commit_now()

    def _commit_now(self) -> None:
        self.session.commit()
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a wake-up hint must never undo a committed change
                log.exception("after-commit callback failed")

    def settle(self, result: T) -> T:
        """Ends a use case: writes a waiting claim and commits (or, when an earlier request
        already did the work, rolls this one back and answers with the earlier result)."""
        claim, self._pending_claim = self._pending_claim, None
        if claim is None:
            return result
        answer = claim.record(self, result)
        if claim.replayed:
            self.session.rollback()
        else:
            self._commit_now()
        claim.settled = True
        return answer


def classify(exc: BaseException) -> str | None:
    """CONFLICT or LOCKED for an error a fresh attempt may get past, else None."""
    if isinstance(exc, StaleDataError):
        return CONFLICT
    if isinstance(exc, IntegrityError):
        # Two identical requests raced: the retry finds the first and answers like it.
        return CONFLICT if "idempotency" in str(exc.orig).lower() else None
    if not isinstance(exc, DBAPIError):
        return None
    state = getattr(exc.orig, "sqlstate", None)
    if state in _CONFLICT_STATES:
        return CONFLICT
    if state in _LOCKED_STATES:
        return LOCKED
    text = str(exc.orig).lower()
    if "database is locked" in text or "lock timeout" in text:
        return LOCKED
    if "deadlock" in text or "could not serialize" in text:
        return CONFLICT
    return None


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))  # noqa: S311 - jitter


def run_in_transaction(uow_factory: Callable[[], UnitOfWork], use_case: Callable[[UnitOfWork], T]) -> T:
    """Runs `use_case(uow)` in a fresh unit of work; see the module docstring for retries."""
    conflicts = locks = 0
    while True:
        uow = uow_factory()
        uow.settles_claims = True
        try:
            with uow:
                return uow.settle(use_case(uow))
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                raise
            if kind == LOCKED:
                locks += 1
                if locks >= LOCK_ATTEMPTS:
                    raise _busy(uow) from None
            else:
                conflicts += 1
                if conflicts >= RETRIES:
                    raise ConcurrentUpdate("the record was changed by other writers on every "
                                           f"one of {RETRIES} attempts; nothing was applied") from None
            reason = (str(getattr(exc, "orig", exc)).splitlines() or [""])[0][:200]
            log.info("%s, retrying (attempt %d): %s", kind, conflicts + locks + 1, reason)
            time.sleep(_backoff(conflicts + locks))


def _busy(uow: UnitOfWork) -> Busy:
    settings = getattr(uow.context, "settings", None)
    seconds = getattr(settings, "lock_timeout_seconds", DEFAULT_LOCK_TIMEOUT)
    return Busy(f"the record is held by other writers (waited {LOCK_ATTEMPTS} times "
                f"{seconds:g} s); nothing was applied")
