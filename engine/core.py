"""The composition root: settings, database, BPMN runtime, channels and clock, wired once."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from engine.adapters import migrate
from engine.adapters.connectwise_channel import ConnectWiseChannel
from engine.adapters.connectwise_client import ClientPool
from engine.adapters.connectwise_reader import ConnectWiseReader
from engine.adapters.db import make_engine, make_session_factory
from engine.adapters.mail_soap import RawMailChannel
from engine.adapters.providers import (
    ChannelRegistry,
    DirectoryMailer,
    EmailChannel,
    Mailer,
    SmtpMailer,
)
from engine.adapters.smtp_listener import IntakeGate
from engine.adapters.soap_client import SoapChannel
from engine.config import Settings
from engine.exceptions import InvalidInput
from engine.jobs import engine_jobs
from engine.services.mail_outcome import MailOptions
from engine.unit_of_work import UnitOfWork, run_in_transaction

T = TypeVar("T")
log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def default_mailer(settings: Settings) -> Mailer:
    if settings.outbound_smtp:
        return SmtpMailer(*settings.outbound_smtp)
    return DirectoryMailer(settings.sent_mail_dir)


class Core:
    """Everything a use case needs besides its arguments. Create one per process."""

    def __init__(self, settings: Settings, *, mailer: Mailer | None = None,
                 clock: Clock | None = None, db_engine=None) -> None:
        from engine.adapters.bpmn import ProcessRuntime  # the only SpiffWorkflow importer

        self.settings = settings.resolved()
        self.db = db_engine or make_engine(self.settings.database_url,
                                           pool_size=self.settings.pool_size)
        self.sessions = make_session_factory(self.db)
        self.clock: Clock = clock or SystemClock()
        self.runtime = ProcessRuntime(script_timeout=self.settings.script_timeout_seconds,
                                      script_memory_mb=self.settings.script_memory_mb)
        self.mailer = mailer or default_mailer(self.settings)
        self.channels = ChannelRegistry()
        self.channels.register(EmailChannel(self.mailer, self.settings.secret_key,
                                            self.settings.own_address))
        self.channels.register(SoapChannel(secret_key=self.settings.secret_key))
        self.channels.register(RawMailChannel(self.mailer))  # SOAP-by-e-mail answers
        # ConnectWise: one HTTP session per provider; the channel finds a provider's
        # connection (with its private key) by id at delivery, never in the message.
        from engine.services import psa_connection, psa_effective
        self.psa_clients = ClientPool()
        self.channels.register(ConnectWiseChannel(
            lambda provider_id, stamp=None: psa_connection.client_for(self, provider_id, stamp)))
        # per channel: what a request is rendered with besides the task (operators.render_request)
        self.channel_settings = {"connectwise": psa_effective.render_settings}
        # per channel: a reader of a provider's API for the inbound poller (psa_inbound)
        self.psa_readers: dict[str, Callable[[int], object]] = {
            "connectwise": lambda provider_id: ConnectWiseReader(
                psa_connection.client_for(self, provider_id))}
        self.work_available = threading.Event()
        self.intake_gate = IntakeGate()  # mail intake first, the worker in its pauses
        self.jobs = engine_jobs(self.settings)  # the workers' periodic jobs
        MailOptions.of(self.settings)  # a wrong LIAISON_MAIL_* setting stops us here
        # SOAP by e-mail runs the SOAP service, which the engine does not import: the
        # composition roots (app, CLI) set this (webservice.mount.wire_soap_by_mail).
        self.soap_mail_endpoint = None

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, context=self)

    def run(self, use_case: Callable[..., T], *args, **kwargs) -> T:
        """Runs one use case in its own transaction, retried on a concurrent change."""
        return run_in_transaction(self.uow, lambda uow: use_case(uow, *args, **kwargs))

    def migrate(self) -> None:
        migrate.upgrade(self.db)

    def close(self) -> None:
        self.psa_clients.close()
        self.runtime.close()
        self.db.dispose()


# -- mail intake: the listener and the poller get the use cases that store mail -------------

def smtp_listener(core: Core, host: str, port: int):
    """The SMTP listener (not started), storing each message with `mail_intake.receive`."""
    from engine.adapters.smtp_listener import make_controller
    from engine.services.mail_intake import receive

    def store(raw: bytes, mail_from: str, recipients: tuple[str, ...]) -> int:
        return core.run(receive, raw, "smtp", mail_from, recipients)

    return make_controller(store, host, port, domain=core.settings.mail_domain,
                           max_bytes=core.settings.mail_max_bytes, gate=core.intake_gate)


def imap_poller(core: Core, url: str | None = None, *, interval: float | None = None,
                move_to: str | None = None):
    """The IMAP poller of LIAISON_IMAP_URL (or `url`), storing with `receive_from_imap`."""
    from engine.adapters.imap_poller import ImapPoller, ImapTarget
    from engine.services.mail_intake import imap_position, receive_from_imap

    extra = core.settings.extra or {}
    ca_file = extra.get("LIAISON_IMAP_CA_FILE") or None
    if ca_file and not os.path.isfile(ca_file):
        raise InvalidInput(f"LIAISON_IMAP_CA_FILE: {ca_file} is not a file",
                           field="LIAISON_IMAP_CA_FILE")
    return ImapPoller(
        ImapTarget.parse(url or core.settings.imap_url or ""),
        position=lambda mailbox, uidvalidity: core.run(imap_position, mailbox, uidvalidity),
        store=lambda mailbox, uid, raw, size: core.run(receive_from_imap, mailbox, uid, raw,
                                                       size),
        max_bytes=core.settings.mail_max_bytes,
        interval=interval or float(extra.get("LIAISON_IMAP_POLL_SECONDS") or 30),
        move_to=move_to or extra.get("LIAISON_IMAP_MOVE_TO") or None, ca_file=ca_file)


def start_mail_intake(core: Core, stop: threading.Event) -> list[threading.Thread]:
    """Inside `serve`: the SMTP listener (LIAISON_SMTP_LISTEN) and the IMAP poller
    (LIAISON_IMAP_URL) as daemon threads that end with `stop`."""
    threads = []
    if core.settings.smtp_listen:
        controller = smtp_listener(core, *core.settings.smtp_listen)
        controller.start()
        log.info("SMTP listener on %s:%s", *core.settings.smtp_listen)

        def stop_listener() -> None:
            stop.wait()
            controller.stop()
        threads.append(threading.Thread(target=stop_listener, name="liaison-smtp", daemon=True))
    if core.settings.imap_url:
        threads.append(threading.Thread(target=imap_poller(core).run_forever, args=(stop,),
                                        name="liaison-imap", daemon=True))
    for thread in threads:
        thread.start()
    return threads
