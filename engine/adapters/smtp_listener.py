"""SMTP in (aiosmtpd), and the raw-mail channel out.

The listener accepts mail for any address at LIAISON_MAIL_DOMAIN and answers 250 only once
the raw message is committed to the inbound mail table; a failure to store answers 451, so
the sending server tries again. Messages over the size limit get 552 (SIZE is advertised).
While mail is being stored, the worker holds back (IntakeGate): senders come first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager
from email import message_from_string, policy

from engine.exceptions import PayloadTooLarge

log = logging.getLogger(__name__)


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

    def wait_for_quiet(self) -> None:
        deadline = time.monotonic() + self.max_wait
        with self._changed:
            while self._storing or time.monotonic() - self._last < self.quiet:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(min(remaining, self.quiet))


INTAKE = IntakeGate()


class InboxHandler:
    """aiosmtpd handler: stores each message through the `receive` use case."""

    def __init__(self, core) -> None:
        self.core = core
        self.domain = core.settings.mail_domain.lower()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.rpartition("@")[2].lower() != self.domain:
            return "550 5.7.1 relaying denied: this server only takes mail for " + self.domain
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        loop = asyncio.get_running_loop()
        try:
            inbox_id = await loop.run_in_executor(None, self.store, raw, envelope.mail_from,
                                                  tuple(envelope.rcpt_tos))
        except PayloadTooLarge:
            return "552 5.3.4 message too big"
        except Exception:
            log.exception("could not store an inbound message from %s", envelope.mail_from)
            return "451 4.3.0 could not store the message; try again later"
        return f"250 2.0.0 stored as inbound mail {inbox_id}"

    def store(self, raw: bytes, mail_from: str | None, recipients: tuple[str, ...]) -> int:
        from engine.services.mail import receive
        with INTAKE.storing():
            return self.core.run(receive, raw, "smtp", mail_from or "", recipients)


def make_controller(core, host: str, port: int):
    from aiosmtpd.controller import Controller
    return Controller(InboxHandler(core), hostname=host, port=port,
                      data_size_limit=core.settings.mail_max_bytes,
                      server_hostname=core.settings.mail_domain, ident="liaison")


def run_smtp_forever(core, host: str, port: int) -> None:
    """`liaison smtp`: serves until interrupted."""
    controller = make_controller(core, host, port)
    controller.start()
    print(f"SMTP listener on {host}:{port} for *@{core.settings.mail_domain}; Ctrl-C stops it",
          flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


def start_inline_intake(core, stop: threading.Event) -> list[threading.Thread]:
    """Inside `serve`: the SMTP listener (LIAISON_SMTP_LISTEN) and the IMAP poller
    (LIAISON_IMAP_URL) as daemon threads that end with `stop`."""
    threads = []
    if core.settings.smtp_listen:
        controller = make_controller(core, *core.settings.smtp_listen)
        controller.start()
        log.info("SMTP listener on %s:%s", *core.settings.smtp_listen)

        def stop_listener() -> None:
            stop.wait()
            controller.stop()
        threads.append(threading.Thread(target=stop_listener, name="liaison-smtp", daemon=True))
    if core.settings.imap_url:
        from engine.adapters.imap_poller import ImapPoller
        poller = ImapPoller(core, core.settings.imap_url)
        threads.append(threading.Thread(target=poller.run_forever, args=(stop,),
                                        name="liaison-imap", daemon=True))
    for thread in threads:
        thread.start()
    return threads


class RawMailChannel:
    """Outbox channel for mail composed in full beforehand (SOAP-by-e-mail responses)."""

    def __init__(self, mailer, name: str) -> None:
        self.mailer = mailer
        self.name = name

    def render(self, provider, request) -> dict:  # pragma: no cover - never renders requests
        raise NotImplementedError("the raw-mail channel only delivers composed mail")

    def deliver(self, message: dict, delivery) -> dict:
        mail = message_from_string(message["eml"], policy=policy.default)
        self.mailer.send(mail)
        return {"message_id": str(mail.get("Message-ID", ""))}
