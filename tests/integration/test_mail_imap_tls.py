"""The IMAP poller over TLS against a real dovecot: imaps://, STARTTLS (imap://…?starttls=1),
certificates verified by default, a private CA trusted through LIAISON_IMAP_CA_FILE. The CA
and the server's certificate are generated for each run (tests/integration/dovecot.py)."""

from __future__ import annotations

import os
import ssl
import subprocess
import uuid

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError

from engine.core import imap_poller
from engine.services import mail_outcome
from engine.worker import Worker
from tests.integration.dovecot import PASSWORD, running_dovecot
from tests.integration.test_mail_support import new_task, reply, task
from tests.support import ROOT, liaison


@pytest.fixture(scope="module")
def tls_server():
    with running_dovecot(tls=True) as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


@pytest.fixture(scope="module")
def plain_server():
    with running_dovecot() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


def new_user(server, append: bytes | None = None) -> str:
    """A fresh mailbox (any name logs in), optionally with one message in its INBOX."""
    user = f"u{uuid.uuid4().hex[:10]}"
    client = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=30)
    if server.ca_file:
        client.starttls(ssl.create_default_context(cafile=server.ca_file))
    client.login(user, PASSWORD)
    if append is not None:
        client.append("INBOX", append)
    client.logout()
    return user


def trusting(core, ca_file: str | None):
    extra = {**core.settings.extra, "LIAISON_IMAP_CA_FILE": ca_file or ""}
    core.settings = core.settings.with_overrides(extra=extra)
    return core


@pytest.mark.parametrize("mode", ["starttls", "imaps"])
def test_mail_is_fetched_over_tls_when_the_private_ca_is_trusted(core, seeded, tls_server,
                                                                 mode):
    created = new_task(core, seeded)
    user = new_user(tls_server, reply(created["id"], f"ExternalReference: TLS-{mode}"))
    url = f"imap://{user}:{PASSWORD}@127.0.0.1:{tls_server.port}/INBOX?starttls=1" \
        if mode == "starttls" else f"imaps://{user}:{PASSWORD}@127.0.0.1:{tls_server.tls_port}/"

    assert imap_poller(trusting(core, tls_server.ca_file), url).poll_once() == 1
    Worker(core).run_once()
    assert task(core, created["id"])["external_reference"] == f"TLS-{mode}"
    [login] = tls_server.logins(user)[1:]  # the first is new_user's own
    assert ", TLS" in login  # dovecot says the session that logged in was encrypted


@pytest.mark.parametrize("mode", ["starttls", "imaps"])
def test_an_untrusted_certificate_is_refused_before_logging_in(core, tls_server, mode):
    user = new_user(tls_server, b"Subject: secret\r\n\r\nnot for strangers\r\n")
    url = f"imap://{user}:{PASSWORD}@127.0.0.1:{tls_server.port}/?starttls=1" \
        if mode == "starttls" else f"imaps://{user}:{PASSWORD}@127.0.0.1:{tls_server.tls_port}/"

    with pytest.raises(ssl.SSLCertVerificationError):
        imap_poller(trusting(core, None), url).poll_once()  # the system's CAs only
    assert len(tls_server.logins(user)) == 1  # only new_user's: no password was sent
    assert core.run(mail_outcome.list_messages) == []


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(core, plain_server):
    user = new_user(plain_server, b"Subject: hi\r\n\r\nhello\r\n")
    url = f"imap://{user}:{PASSWORD}@127.0.0.1:{plain_server.port}/INBOX?starttls=1"

    with pytest.raises(CapabilityError, match="STARTTLS"):
        imap_poller(core, url).poll_once()
    assert len(plain_server.logins(user)) == 1  # ours never logged in in the clear
    assert core.run(mail_outcome.list_messages) == []


@pytest.mark.parametrize(("url", "ca_file", "says"), [
    ("imap://u:p@127.0.0.1:1/INBOX?startls=1", "", "unknown parameter 'startls'"),
    ("imap://u:p@127.0.0.1:1/INBOX?starttls=1", "/nonexistent/ca.pem",
     "LIAISON_IMAP_CA_FILE: /nonexistent/ca.pem is not a file"),
])
def test_a_worker_with_a_wrong_imap_setting_stops_with_one_line(core, url, ca_file, says):
    env = {**os.environ, "LIAISON_DATABASE_URL": core.settings.database_url,
           "LIAISON_INSTANCE_PATH": str(core.settings.instance_path),
           "LIAISON_IMAP_URL": url, "LIAISON_IMAP_CA_FILE": ca_file}
    done = subprocess.run(liaison("worker"), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("liaison: error: ")
    assert says in done.stderr and "Traceback" not in done.stderr
