"""The IMAP poller against a real IMAP server: Debian's dovecot on a loopback port
(tests/integration/dovecot.py). Mail is put in the mailbox with IMAP APPEND, as a mail
server would deliver it. TLS and STARTTLS: test_mail_imap_tls.py."""

from __future__ import annotations

import os
import smtplib
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from imapclient import IMAPClient

from engine.core import imap_poller, start_mail_intake
from engine.services import mail_outcome, queries
from engine.worker import Worker
from tests.conftest import free_port, make_core
from tests.integration.dovecot import PASSWORD, running_dovecot
from tests.integration.test_mail_support import exchanges, new_task, reply, task
from tests.support import liaison, wait_for


@pytest.fixture(scope="module")
def dovecot():
    with running_dovecot() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server.port


@pytest.fixture
def mailbox(dovecot):
    """A fresh IMAP user (any name logs in); returns (url, client)."""
    user = f"u{uuid.uuid4().hex[:10]}"
    client = IMAPClient("127.0.0.1", port=dovecot, ssl=False, timeout=30)
    client.login(user, PASSWORD)
    yield f"imap://{user}:{PASSWORD}@127.0.0.1:{dovecot}/INBOX", client
    client.logout()


def flags(client, folder="INBOX") -> dict:
    client.select_folder(folder)
    return {uid: set(data[b"FLAGS"]) for uid, data in
            client.fetch(client.search("ALL"), ["FLAGS"]).items()}


def test_new_mail_is_stored_marked_seen_and_applied_by_the_worker(core, seeded, mailbox):
    url, client = mailbox
    created = new_task(core, seeded)
    client.append("INBOX", reply(created["id"], "ExternalReference: IMAP-1"))

    assert imap_poller(core, url).poll_once() == 1
    [stored] = core.run(mail_outcome.list_messages)
    assert (stored["source"], stored["status"]) == ("imap", "pending")
    assert all(b"\\Seen" in f for f in flags(client).values())
    Worker(core).run_once()
    assert task(core, created["id"])["external_reference"] == "IMAP-1"


def test_a_restarted_poller_never_stores_a_message_twice(core, seeded, mailbox):
    url, client = mailbox
    created = new_task(core, seeded)
    client.append("INBOX", reply(created["id"], "first"))
    imap_poller(core, url).poll_once()
    client.select_folder("INBOX")
    client.remove_flags(client.search("ALL"), [b"\\Seen"])  # as if marking had failed

    client.append("INBOX", reply(created["id"], "second"))
    assert imap_poller(core, url).poll_once() == 1  # a new poller: only the new message
    Worker(core).run_once()
    assert [m["status"] for m in core.run(mail_outcome.list_messages)] == ["applied", "applied"]
    notes = [n["text"] for n in core.run(queries.task_page, created["id"])["notes"]
             if n["kind"] == "external_update"]
    assert notes == ["first", "second"]


def test_processed_mail_can_be_moved_to_another_folder(core, seeded, mailbox):
    url, client = mailbox
    created = new_task(core, seeded)
    client.append("INBOX", reply(created["id"], "ExternalReference: MOVED-1"))

    imap_poller(core, url, move_to="Processed by liaison").poll_once()
    assert flags(client) == {}
    assert len(flags(client, "Processed by liaison")) == 1


def test_a_recreated_mailbox_is_read_again_but_nothing_is_applied_twice(core, seeded, mailbox):
    url, client = mailbox
    created = new_task(core, seeded)
    raw = reply(created["id"], "only once", message_id="<once@carrier.example>")
    client.create_folder("Replies")
    client.append("Replies", raw)
    folder_url = url.replace("/INBOX", "/Replies")
    imap_poller(core, folder_url).poll_once()

    client.delete_folder("Replies")  # a new UIDVALIDITY: every UID means something else
    client.create_folder("Replies")
    client.append("Replies", raw)
    assert imap_poller(core, folder_url).poll_once() == 1
    Worker(core).run_once()
    [stored] = core.run(mail_outcome.list_messages)
    assert (stored["status"], stored["repeats"]) == ("applied", 1)
    assert [e["request_type"] for e in exchanges(core, created["id"]) if e["direction"] == "In"] \
        == ["Update"]


def test_mail_over_the_size_limit_is_recorded_not_fetched(tmp_path, sqlite_url, mailer,
                                                         mailbox):
    url, client = mailbox
    small = make_core(sqlite_url, tmp_path, mailer, mail_max_bytes=2000)
    try:
        client.append("INBOX", b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n")
        imap_poller(small, url).poll_once()
        [stored] = small.run(mail_outcome.list_messages)
        assert stored["status"] == "rejected" and "larger than the limit" in stored["outcome"]
    finally:
        small.close()


def test_serve_runs_the_listener_and_the_poller_until_stopped(core, seeded, mailbox):
    url, client = mailbox
    port = free_port()
    core.settings = core.settings.with_overrides(
        smtp_listen=("127.0.0.1", port), imap_url=url,
        extra={"LIAISON_IMAP_POLL_SECONDS": "0.2"})
    first, second = new_task(core, seeded, title="one"), new_task(core, seeded, title="two")
    stop = threading.Event()
    threads = start_mail_intake(core, stop)
    try:
        client.append("INBOX", reply(first["id"], "ExternalReference: BY-IMAP"))
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.sendmail("noc@carrier.example", ["liaison@liaison.local"],
                          reply(second["id"], "ExternalReference: BY-SMTP"))
        deadline = time.monotonic() + 30
        while len(core.run(mail_outcome.list_messages)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    Worker(core).run_once()
    assert task(core, first["id"])["external_reference"] == "BY-IMAP"
    assert task(core, second["id"])["external_reference"] == "BY-SMTP"


def test_a_separate_worker_polls_imap_when_workers_are_not_inline(core, seeded, mailbox, tmp_path):
    """LIAISON_WORKERS_INLINE=0: `liaison worker` (not `serve`) polls the mailbox."""
    url, client = mailbox
    created = new_task(core, seeded)
    env = {**os.environ, "LIAISON_DATABASE_URL": core.settings.database_url,
           "LIAISON_INSTANCE_PATH": str(core.settings.instance_path),
           "LIAISON_SECRET_KEY": core.settings.secret_key, "LIAISON_IMAP_URL": url,
           "LIAISON_IMAP_POLL_SECONDS": "0.2", "LIAISON_WORKERS_INLINE": "0"}
    worker = subprocess.Popen(liaison("worker"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2])
    try:
        client.append("INBOX", reply(created["id"], "ExternalReference: WORKER-IMAP"))
        wait_for(lambda: task(core, created["id"])["external_reference"] == "WORKER-IMAP")
    finally:
        worker.terminate()
        worker.wait(15)
    assert task(core, created["id"])["external_reference"] == "WORKER-IMAP"
