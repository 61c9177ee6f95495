"""Inbound mail is stored once per Message-ID and sender, whichever intake brings it and
however often (issue 12): repeats are counted on the first copy, which is applied once.
Mail without a Message-ID cannot be recognised and is stored each time."""

from __future__ import annotations

import os
import smtplib
import subprocess
import threading
import uuid

import pytest
from imapclient import IMAPClient

from engine.core import imap_poller, smtp_listener
from engine.services import mail_intake, mail_outcome
from engine.worker import Worker
from tests.conftest import free_port, seed
from tests.integration.dovecot import PASSWORD, running_dovecot
from tests.integration.test_mail_support import inbound, new_task, reply, task
from tests.support import ROOT, liaison


@pytest.fixture(scope="module")
def dovecot():
    with running_dovecot() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


def by_smtp(core, raw: bytes, times: int) -> list[bytes]:
    port = free_port()
    controller = smtp_listener(core, "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            return [smtp.sendmail("noc@carrier.example", ["liaison@liaison.local"], raw)
                    or b"250" for _ in range(times)]
    finally:
        controller.stop()


def by_imap(core, dovecot, raw: bytes, times: int) -> int:
    user = f"u{uuid.uuid4().hex[:10]}"
    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=30)
    client.login(user, PASSWORD)
    for _ in range(times):
        client.append("INBOX", raw)
    client.logout()
    return imap_poller(core, f"imap://{user}:{PASSWORD}@127.0.0.1:{dovecot.port}/").poll_once()


def by_ingest_eml(core, tmp_path, raw: bytes, times: int) -> list[str]:
    files = []
    for number in range(times):
        files.append(tmp_path / f"copy-{number}.eml")
        files[-1].write_bytes(raw)
    env = {**os.environ, "LIAISON_DATABASE_URL": core.settings.database_url,
           "LIAISON_INSTANCE_PATH": str(core.settings.instance_path),
           "LIAISON_SECRET_KEY": core.settings.secret_key}
    done = subprocess.run(liaison("ingest-eml", *map(str, files)), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.splitlines()


def test_one_mail_brought_100_times_by_every_intake_is_stored_once_and_applied_once(
        core, seeded, dovecot, tmp_path):
    created = new_task(core, seeded)
    raw = reply(created["id"], "ExternalReference: ONCE-1", message_id="<once@carrier.example>")

    assert len(by_smtp(core, raw, 40)) == 40  # every copy acknowledged with a 250
    assert by_imap(core, dovecot, raw, 30) == 30
    Worker(core).run_once()  # applied meanwhile; the files below come after
    lines = by_ingest_eml(core, tmp_path, raw, 30)

    [stored] = core.run(mail_outcome.list_messages)
    assert (stored["status"], stored["source"], stored["repeats"]) == ("applied", "smtp", 99)
    assert stored["last_seen_at"] > stored["received_at"]
    assert inbound(core, created["id"]) == [("Acknowledgement", "email", "delivered")]
    assert task(core, created["id"])["external_reference"] == "ONCE-1"
    assert lines[-1].endswith(f"(a repeat of inbound mail {stored['id']}, seen 100 times)")


def test_mail_without_a_message_id_is_stored_each_time(core, seeded):
    created = new_task(core, seeded)
    raw = reply(created["id"], "no id here", message_id=False)
    first = core.run(mail_intake.receive, raw, "smtp")
    second = core.run(mail_intake.receive, raw, "smtp")

    assert first != second
    assert [m["repeats"] for m in core.run(mail_outcome.list_messages)] == [0, 0]


def test_intakes_racing_with_one_mail_store_one_row(any_core):
    """On PostgreSQL the unique index decides, not a look-up before the insert."""
    core = any_core
    created = new_task(core, seed(core))
    raw = reply(created["id"], "ExternalReference: RACE-9", message_id="<race9@carrier.example>")
    start, ids, errors = threading.Barrier(6), [], []

    def receive() -> None:
        start.wait()
        try:
            ids.append(core.run(mail_intake.receive, raw, "smtp"))
        except Exception as exc:  # a lost race must not surface as an error to the sender
            errors.append(exc)

    threads = [threading.Thread(target=receive) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == [] and len(set(ids)) == 1
    [stored] = core.run(mail_outcome.list_messages)
    assert stored["repeats"] == 5
    Worker(core).run_once()
    assert inbound(core, created["id"]) == [("Acknowledgement", "email", "delivered")]
