"""SMTP in (aiosmtpd).

The listener accepts mail for any address at LIAISON_MAIL_DOMAIN and answers 250 only once
`store` returns, i.e. once the raw message is committed to the inbound mail table; a failure
to store answers 451, so the sending server tries again. Messages over the size limit get 552
(SIZE is advertised). While mail is being stored, the worker holds back (IntakeGate): senders
come first. The listener knows nothing of what happens to a mail: the composition root
(engine.core) hands it the use case that stores one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from engine.exceptions import PayloadTooLarge

log = logging.getLogger(__name__)

# (raw message, envelope sender, envelope recipients) -> id of the stored mail
StoreMail = Callable[[bytes, str, tuple[str, ...]], int]


class IntakeGate:
    """Senders first. SQLite has a single writer, so while mail is being stored the worker
    holds back its next transaction: a burst is taken at intake speed and applied in the
    pauses. `max_wait` bounds the holding back, so a steady stream is still processed."""

    def __init__(self, quiet: float = 0.005, max_wait: float = 0.25) -> None:
        self.quiet, self.max_wait = quiet, max_wait
        self._changed = threading.Condition()
        self._storing = 0
        self._last = 0.0

    @contextmanager
    def storing(self):
        with self._changed:
            self._storing += 1
        try:
            yield
        finally:
            with self._changed:
                self._storing -= 1
                self._last = time.monotonic()
                self._changed.notify_all()

    def busy(self) -> bool:
        """Whether a message is being stored right now."""
        return self._storing > 0

    def wait_for_quiet(self) -> None:
        deadline = time.monotonic() + self.max_wait
        with self._changed:
            while self._storing or time.monotonic() - self._last < self.quiet:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(min(remaining, self.quiet))


class InboxHandler:
    """aiosmtpd handler: hands each message to `store` (the composition root's `receive`)."""

    def __init__(self, store: StoreMail, domain: str, gate: IntakeGate | None = None) -> None:
        self.store, self.domain = store, domain.lower()
        self.gate = gate or IntakeGate()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.rpartition("@")[2].lower() != self.domain:
            return "550 5.7.1 relaying denied: this server only takes mail for " + self.domain
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        loop = asyncio.get_running_loop()
        try:
            inbox_id = await loop.run_in_executor(None, self._store, raw, envelope.mail_from,
                                                  tuple(envelope.rcpt_tos))
        except PayloadTooLarge:
            return "552 5.3.4 message too big"
        except Exception:
            log.exception("could not store an inbound message from %s", envelope.mail_from)
            return "451 4.3.0 could not store the message; try again later"
        return f"250 2.0.0 stored as inbound mail {inbox_id}"

    def _store(self, raw: bytes, mail_from: str | None, recipients: tuple[str, ...]) -> int:
        with self.gate.storing():
            return self.store(raw, mail_from or "", recipients)


def make_controller(store: StoreMail, host: str, port: int, *, domain: str, max_bytes: int,
                    gate: IntakeGate | None = None):
    """The listener on host:port for mail to *@domain; SIZE advertises `max_bytes`."""
    from aiosmtpd.controller import Controller
    return Controller(InboxHandler(store, domain, gate), hostname=host, port=port,
                      data_size_limit=max_bytes, server_hostname=domain, ident="liaison")


def serve_until_interrupted(controller, description: str) -> None:
    """`liaison smtp`: serves until interrupted."""
    controller.start()
    print(f"SMTP listener on {description}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()
