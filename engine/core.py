"""The composition root: settings, database, BPMN runtime, channels and clock, wired once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from engine.adapters import migrate
from engine.adapters.db import make_engine, make_session_factory
from engine.adapters.providers import (
    ChannelRegistry,
    DirectoryMailer,
    EmailChannel,
    Mailer,
    SmtpMailer,
)
from engine.adapters.soap_client import SoapChannel
from engine.config import Settings
from engine.jobs import engine_jobs
from engine.unit_of_work import UnitOfWork, run_in_transaction

T = TypeVar("T")


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
        self.db = db_engine or make_engine(self.settings.database_url)
        self.sessions = make_session_factory(self.db)
        self.clock: Clock = clock or SystemClock()
        self.runtime = ProcessRuntime(script_timeout=self.settings.script_timeout_seconds,
                                      script_memory_mb=self.settings.script_memory_mb)
        self.mailer = mailer or default_mailer(self.settings)
        self.channels = ChannelRegistry()
        self.channels.register(EmailChannel(self.mailer, self.settings.secret_key,
                                            self.settings.own_address))
        self.channels.register(SoapChannel())
        self.work_available = threading.Event()
        self.jobs = engine_jobs(self.settings)  # the workers' periodic jobs
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
        self.runtime.close()
        self.db.dispose()
