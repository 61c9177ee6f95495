"""Outbound mail is sent at least once with one Message-ID per exchange; written mail
appears whole or not at all, once per exchange however often it is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes, policy

import pytest

from engine.adapters import providers
from engine.adapters.providers import (
    Delivery,
    DirectoryMailer,
    EmailChannel,
    OutboundRequest,
    ProviderInfo,
)
from engine.exceptions import DeliveryError
from engine.services import admin, outbox, queries, tasks
from engine.worker import Worker
from tests.conftest import make_core, seed
from tests.fakes import FakeClock, FakeMailer
from tests.support import ROOT, wait_for

TASK = {"id": 7, "ticket_id": 3, "title": "Line down", "description": "Leeds offline"}


def rendered(channel: EmailChannel) -> dict:
    return channel.render(ProviderInfo("Carrier", "email", email="noc@carrier.example"),
                          OutboundRequest("Submit Request", TASK, {"id": 3}))


def written(directory) -> list:
    return sorted(p.name for p in directory.iterdir())


def test_every_attempt_and_replay_of_an_exchange_sends_one_message_id(tmp_path):
    mailer = DirectoryMailer(tmp_path / "sent")
    channel = EmailChannel(mailer, "secret", "liaison@liaison.local")
    first = channel.deliver(rendered(channel), Delivery(outbox_id=1, exchange_id=42, attempt=1))
    retry = channel.deliver(rendered(channel), Delivery(outbox_id=1, exchange_id=42, attempt=2))
    replay = channel.deliver(rendered(channel), Delivery(outbox_id=5, exchange_id=42, attempt=1))
    other = channel.deliver(rendered(channel), Delivery(outbox_id=6, exchange_id=43))

    assert first == retry == replay
    assert first["message_id"].startswith("<liaison-exchange-42-")
    assert first["message_id"].endswith("@liaison.local>")
    assert other != first
    files = written(tmp_path / "sent")
    assert len(files) == 2  # the repeats replaced their file
    mail = message_from_bytes((tmp_path / "sent" / files[0]).read_bytes(), policy=policy.default)
    assert mail["Message-ID"] in (first["message_id"], other["message_id"])


def test_a_write_interrupted_before_its_rename_leaves_no_mail(tmp_path, monkeypatch):
    mailer = DirectoryMailer(tmp_path)
    channel = EmailChannel(mailer, "secret", "liaison@liaison.local")

    def crash(source, target):
        raise OSError("No space left on device")

    monkeypatch.setattr(providers.os, "replace", crash)
    with pytest.raises(DeliveryError, match="No space left"):
        channel.deliver(rendered(channel), Delivery(outbox_id=1, exchange_id=1))
    assert written(tmp_path) == []


def test_leftovers_of_a_killed_writer_are_removed_and_a_living_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f".liaison-exchange-1-ab@x.{dead}.0123abcd.tmp").write_bytes(b"Subject: half")
    living = tmp_path / f".liaison-exchange-2-ab@x.{os.getpid()}.0123abcd.tmp"
    living.write_bytes(b"Subject: being written")
    DirectoryMailer(tmp_path)
    assert written(tmp_path) == [living.name]


def test_a_killed_worker_that_had_written_the_mail_does_not_double_it(tmp_path, sqlite_url):
    """Written, then killed before the outcome was recorded: the next worker writes it again,
    under the same name."""
    clock = FakeClock()
    core = make_core(sqlite_url, tmp_path, DirectoryMailer(tmp_path / "sent"), clock=clock)
    try:
        data = seed(core)
        task = core.run(tasks.create_task, data["ticket"]["id"], "Swap disk", group="Carrier Group")
        [item] = core.run(outbox.claim_due, "doomed")
        Worker(core, name="doomed").deliver(item)  # sent; the process dies before recording
        clock.advance(seconds=core.settings.worker_lease_seconds + 1)
        assert Worker(core, name="heir").deliver_due() == 1
        [exchange] = core.run(queries.exchanges_of_task, task["id"])
        assert exchange["status"] == "delivered"
        [name] = written(tmp_path / "sent")
        detail = core.run(queries.exchange_detail, exchange["id"])
        assert name == detail["result"]["message_id"].strip("<>") + ".eml"
    finally:
        core.close()


def test_a_replayed_exchange_keeps_its_message_id_rendered_or_not(tmp_path, sqlite_url):
    mailer = FakeMailer()
    core = make_core(sqlite_url, tmp_path, mailer, delivery_attempts=1)
    try:
        data = seed(core)
        mailer.fail_next = 1
        task = core.run(tasks.create_task, data["ticket"]["id"], "Swap disk", group="Carrier Group")
        Worker(core, name="w").deliver_due()
        [failed] = core.run(queries.exchanges_of_task, task["id"])
        assert failed["status"] == "failed"
        core.run(outbox.replay_exchange, failed["id"])
        Worker(core, name="w").deliver_due()
        core.run(outbox.replay_exchange, failed["id"])  # sent once more, on request
        Worker(core, name="w").deliver_due()
        ids = {m["Message-ID"] for m in mailer.sent}
        assert len(mailer.sent) == 2 and len(ids) == 1
        assert ids.pop().startswith(f"<liaison-exchange-{failed['id']}-")

        # a request that could not be rendered (no address yet) is rendered on replay
        core.run(admin.update_provider, data["provider"]["id"], {"email": None})
        later = core.run(tasks.create_task, data["ticket"]["id"], "Later", group="Carrier Group")
        [unrendered] = core.run(queries.exchanges_of_task, later["id"])
        assert unrendered["status"] == "failed"
        core.run(admin.update_provider, data["provider"]["id"], {"email": "noc@carrier.example"})
        core.run(outbox.replay_exchange, unrendered["id"])
        Worker(core, name="w").deliver_due()
        assert mailer.sent[-1]["Message-ID"].startswith(f"<liaison-exchange-{unrendered['id']}-")
    finally:
        core.close()


WRITER = """
import builtins, io, sys, time
from email.message import EmailMessage
from pathlib import Path
from engine.adapters.providers import DirectoryMailer

real_open = io.open

class SlowFile:  # a slow disk: writes trickle out, so the kill lands mid-write
    def __init__(self, file):
        self.file = file
    def write(self, data):
        for start in range(0, len(data), 32768):
            self.file.write(data[start:start + 32768])
            self.file.flush()
            time.sleep(0.02)
        return len(data)
    def __getattr__(self, name):
        return getattr(self.file, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.file.__exit__(*exc)

def slow_open(file, mode="r", *args, **kwargs):
    opened = real_open(file, mode, *args, **kwargs)
    return SlowFile(opened) if "w" in mode else opened

builtins.open = io.open = slow_open
message = EmailMessage()
message["Message-ID"] = "<liaison-exchange-7-ab@liaison.local>"
message["Subject"] = "big"
message.set_content(("x" * 70 + "\\n") * 40000)  # 2.8 MB: some 90 slow writes
print("ready", flush=True)
DirectoryMailer(Path(sys.argv[1])).send(message)
"""


def test_a_writer_killed_mid_write_leaves_no_partial_mail(tmp_path):
    """SIGKILL while a large mail is being written: no .eml appears, and what the dead
    writer left is swept away by the next mailer."""
    folder = tmp_path / "sent"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=ROOT,
                              stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == b"ready"
        wait_for(lambda: any(p.stat().st_size > 0 for p in folder.glob("*")) if folder.is_dir()
                 else False, timeout=60, interval=0.01)
        writer.kill()
        writer.wait(30)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert list(folder.glob("*.eml")) == []
    DirectoryMailer(folder)
    assert list(folder.iterdir()) == []
