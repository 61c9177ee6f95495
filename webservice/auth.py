"""Who is calling: a provider, authenticated by its WS-Security UsernameToken.

Nonces are kept in the database (table ws_nonces), so a replay is refused across restarts
and across several server processes; the workers' `purge-nonces` job forgets old ones.
Failed logins are logged without the password and slowed down per username: after a few
failures in a row, further attempts are refused for a growing while, whatever the password,
so guessing gets no faster by trying harder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from engine.exceptions import NotAuthenticated
from engine.services.provider_auth import verify_provider_login
from webservice.wssecurity import UsernameToken

log = logging.getLogger(__name__)



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


class ProviderAuthenticator:
    def __init__(self, core, throttle: LoginThrottle | None = None) -> None:
        self.core = core
        self.throttle = throttle or LoginThrottle()

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
        return provider
