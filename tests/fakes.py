"""Small fakes for the outside world (no mock.patch chains)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from engine.exceptions import DeliveryError


class FakeMailer:
    """Records sent mail; can be told to fail the next N sends."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    def send(self, message: EmailMessage) -> None:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                raise DeliveryError("SMTP relay refused the connection (fake)")
            self.sent.append(message)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current
