"""Who is calling: a provider, authenticated by its WS-Security UsernameToken.

Nonces are kept in the database (table ws_nonces), so a replay is refused across restarts
and across several server processes. Failed logins are logged without the password and
slowed down per username: after a few failures in a row, further attempts are refused for a
growing while, whatever the password, so guessing gets no faster by trying harder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from engine.adapters import orm
from engine.domain import credentials
from engine.exceptions import NotAuthenticated
from webservice.wssecurity import SKEW, UsernameToken

log = logging.getLogger(__name__)

NONCE_RETENTION = 3 * SKEW  # longer than any Created we accept can be in the future
PURGE_EVERY = 60.0


class LoginThrottle:
    """Failures in a row per username (in this process); a lock-out doubling up to a cap."""

    def __init__(self, free_failures: int = 3, first_pause: float = 1.0, max_pause: float = 60.0,
                 max_entries: int = 10_000, clock=time.monotonic) -> None:
        self.free_failures, self.first_pause, self.max_pause = free_failures, first_pause, max_pause
        self.max_entries, self.clock = max_entries, clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, username: str) -> None:
        with self._lock:
            _, blocked_until = self._failures.get(username, (0, 0.0))
        wait = blocked_until - self.clock()
        if wait > 0:
            raise NotAuthenticated(f"too many failed logins; try again in {int(wait) + 1} s")

    def failed(self, username: str) -> int:
        with self._lock:
            count = self._failures.pop(username, (0, 0.0))[0] + 1
            over = count - self.free_failures
            pause = min(self.first_pause * 2 ** (over - 1), self.max_pause) if over > 0 else 0.0
            self._failures[username] = (count, self.clock() + pause)
            while len(self._failures) > self.max_entries:
                self._failures.popitem(last=False)
        return count

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


def _expected_password(secret_key: str, provider: orm.Provider) -> str | None:
    password = credentials.provider_password(secret_key, provider.username, provider.password_salt)
    # The stored fingerprint proves the salt was drawn under the current secret key.
    if credentials.password_fingerprint(password, provider.password_salt) != provider.password_hash:
        return None
    return password


def verify_provider_login(uow, token: UsernameToken, now: datetime) -> str:
    """Checks the token's password and records its nonce; returns the provider's name."""
    provider = uow.repo.provider_by_username(token.username)
    expected = _expected_password(uow.context.settings.secret_key, provider) if provider else None
    if expected is None or not token.matches(expected):
        raise NotAuthenticated("invalid username or password")
    if token.nonce is not None:
        uow.repo.add(orm.WsNonce(provider_id=provider.id, nonce=token.nonce, created_at=now))
        try:
            uow.commit()
        except IntegrityError:
            raise NotAuthenticated("the WS-Security nonce was used before") from None
    return provider.name


def purge_nonces(uow, before: datetime) -> None:
    """Forgets nonces old enough that their Created would be refused anyway."""
    uow.repo.session.execute(delete(orm.WsNonce).where(orm.WsNonce.created_at < before))
    uow.commit()


class ProviderAuthenticator:
    def __init__(self, core, throttle: LoginThrottle | None = None) -> None:
        self.core = core
        self.throttle = throttle or LoginThrottle()
        self._next_purge = 0.0

    def authenticate(self, token: UsernameToken, client: str = "?") -> str:
        """The provider's name, or NotAuthenticated (logged, and counted against the name)."""
        self.throttle.check(token.username)
        now = self.core.clock.now()
        try:
            token.check_fresh(now)
            provider = self.core.run(verify_provider_login, token, now)
        except NotAuthenticated as exc:
            failures = self.throttle.failed(token.username)
            log.warning("SOAP login refused for username %r from %s: %s (%d in a row)",
                        token.username[:80], client, exc.message, failures)
            raise
        self.throttle.succeeded(token.username)
        self._purge_now_and_then(now)
        return provider

    def _purge_now_and_then(self, now: datetime) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY
        try:
            self.core.run(purge_nonces, now - NONCE_RETENTION)
        except Exception:  # housekeeping must never fail a request
            log.exception("purging old WS-Security nonces failed")
