"""Shared fixtures: a migrated Core on SQLite (and PostgreSQL where configured), the app,
a live server on loopback, and seeded demo-like data."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, text

from engine.config import Settings
from engine.core import Core
from engine.services import admin, tasks
from engine.services.demo import deploy_bundled
from tests.fakes import FakeClock, FakeMailer
from webservice.mount import wire_soap_by_mail

PG_ENV = "LIAISON_TEST_DATABASE_URL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'liaison-test.db'}"


@pytest.fixture
def postgres_url():
    """A fresh schema on the PostgreSQL of LIAISON_TEST_DATABASE_URL, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL not configured ({PG_ENV} unset)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin_engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request):
    """Parametrizes a test over SQLite and PostgreSQL (skipped where PostgreSQL is absent)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def mailer():
    return FakeMailer()


@pytest.fixture
def clock():
    return FakeClock()


def make_core(url, tmp_path, mailer, clock=None, **overrides) -> Core:
    settings = Settings(instance_path=tmp_path / "instance", database_url=url,
                        secret_key="test-secret-key", public_url="http://127.0.0.1:8000",
                        delivery_backoff_seconds=0.0, **overrides)
    core = Core(settings, mailer=mailer, clock=clock)
    wire_soap_by_mail(core)
    core.migrate()
    deploy_bundled(core)
    return core


@pytest.fixture
def core(sqlite_url, tmp_path, mailer):
    core = make_core(sqlite_url, tmp_path, mailer)
    yield core
    core.close()


@pytest.fixture
def any_core(any_db_url, tmp_path, mailer):
    core = make_core(any_db_url, tmp_path, mailer)
    yield core
    core.close()


def seed(core) -> dict:
    """An e-mail provider, its integrated group (bundled processes), a local group, a ticket."""
    provider = core.run(admin.create_provider, "Carrier", "email", email="noc@carrier.example")
    group = core.run(admin.create_group, "Carrier Group", integrated=True, provider="Carrier")
    local = core.run(admin.create_group, "Desk", integrated=False)
    ticket = core.run(tasks.create_ticket, "Link down", "Leeds is offline", customer="ACME")
    return {"provider": provider, "group": group, "local": local, "ticket": ticket}


@pytest.fixture
def seeded(core):
    return seed(core)


@pytest.fixture
def admin_token(core):
    core.run(admin.create_user, "root", "root-password", "admin")
    return core.run(admin.create_token, "root")


@pytest.fixture
def app(core):
    from app import create_app
    app = create_app(core=core)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live_server(core):
    """Serves create_app() on a free loopback port in a thread; stops after the test."""
    from werkzeug.serving import make_server

    from app import create_app
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    core.settings = replace(core.settings, public_url=base)
    server = make_server("127.0.0.1", port, create_app(core=core), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(5)


__all__ = ["FakeClock", "free_port", "make_core", "seed"]
