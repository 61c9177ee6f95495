"""Stored replies are applied in batches, one transaction per batch (issue 11): a mail that
is refused or fails is rolled back alone — what it had applied goes with it — and the
batch's other mails are applied in the same pass; racing workers share the pending mail
without applying any twice. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from sqlalchemy import event

from engine.adapters.smtp_listener import IntakeGate
from engine.services import mail, mail_intake, mail_outcome, tasks
from tests.conftest import seed
from tests.integration.test_mail_support import inbound, new_task, reply, task
from tests.support import ROOT, liaison


class ExplodingRuntime:
    """The real BPMN runtime, except that delivering a message to one task's instance
    fails the way a bug of ours would (not a refusal the mail could be blamed for)."""

    def __init__(self, runtime, task_id: int) -> None:
        self.runtime, self.task_id = runtime, task_id

    def __getattr__(self, name):
        return getattr(self.runtime, name)

    def deliver_message(self, spec, state, name, task_id, *args, **kwargs):
        if task_id == self.task_id:
            raise RuntimeError("engine bug while delivering the message")
        return self.runtime.deliver_message(spec, state, name, task_id, *args, **kwargs)


@pytest.fixture
def db(any_core):
    return any_core, seed(any_core)


def test_one_refused_and_one_failing_mail_never_lose_the_batch_others(db):
    core, seeded = db
    good = [new_task(core, seeded, title=f"good {n}") for n in range(3)]
    closed, buggy, greedy = (new_task(core, seeded, title=t) for t in ("closed", "bug", "big"))
    core.run(tasks.close_task, closed["id"], "done here")
    core.runtime = ExplodingRuntime(core.runtime, buggy["id"])
    ids = [core.run(mail_intake.receive, raw, "smtp") for raw in (
        reply(good[0]["id"], "ExternalReference: G-0"),
        reply(closed["id"], "ExternalReference: LATE"),  # refused: TaskClosed
        reply(buggy["id"], "ExternalReference: BUG-1"),  # fails: our bug
        reply(good[1]["id"], "ExternalReference: G-1"),
        # the reference is set, then the update is refused: neither may stay
        reply(greedy["id"], "x" * 100_001 + "\nExternalReference: BIG-1\nAction: Update"),
        reply(good[2]["id"], "ExternalReference: G-2"),
    )]

    assert mail.process_inbox(core) == 6  # one pass, one batch
    views = [core.run(mail_outcome.message_view, inbox_id) for inbox_id in ids]
    assert [v["status"] for v in views] == \
        ["applied", "rejected", "pending", "applied", "rejected", "applied"]
    assert "TaskClosed" in views[1]["outcome"]
    assert views[2]["attempts"] == 1 and "engine bug" in views[2]["outcome"]
    assert "longer than" in views[4]["outcome"]
    for n, created in enumerate(good):
        assert task(core, created["id"])["external_reference"] == f"G-{n}"
        assert inbound(core, created["id"]) == [("Acknowledgement", "email", "delivered")]
    for created in (buggy, greedy):  # rolled back to the mail's savepoint, nothing kept
        assert task(core, created["id"])["external_reference"] is None
    assert inbound(core, buggy["id"]) == []
    assert inbound(core, greedy["id"]) == [("Update", "email", "rejected")]


def test_a_mail_failing_every_time_is_set_aside_and_the_rest_flows(db):
    core, seeded = db
    buggy, fine = new_task(core, seeded, title="bug"), new_task(core, seeded, title="fine")
    core.runtime = ExplodingRuntime(core.runtime, buggy["id"])
    poison = core.run(mail_intake.receive, reply(buggy["id"], "ExternalReference: B"), "smtp")
    for attempt in range(mail.MAX_ATTEMPTS):
        core.run(mail_intake.receive, reply(fine["id"], f"note {attempt}"), "smtp")
        mail.process_inbox(core)

    assert core.run(mail_outcome.message_view, poison)["status"] == "failed"
    assert [m["status"] for m in core.run(mail_outcome.list_messages)].count("applied") == 3
    assert len(inbound(core, fine["id"])) == 3


def test_racing_workers_share_the_pending_mail_and_apply_each_once(db):
    core, seeded = db
    core.settings = core.settings.with_overrides(
        extra={"LIAISON_MAIL_BATCH": "7", "LIAISON_MAIL_RATE_LIMIT": "1000/600"})
    created = [new_task(core, seeded, title=f"line {n}") for n in range(12)]
    for n in range(36):
        target = created[n % 12]["id"]
        raw = reply(target, f"ExternalReference: R-{target}" if n < 12 else f"update {n}")
        core.run(mail_intake.receive, raw, "smtp")
    errors = []

    def work() -> None:
        try:
            while mail.process_inbox(core):
                pass
        except Exception as exc:  # a worker must never fail on another's rows
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert errors == []
    assert [m["status"] for m in core.run(mail_outcome.list_messages, None, 100)] == \
        ["applied"] * 36
    for each in created:
        assert sorted(inbound(core, each["id"])) == \
            [("Acknowledgement", "email", "delivered")] + [("Update", "email", "delivered")] * 2


def test_on_sqlite_a_sender_waiting_for_its_250_goes_between_the_mails_of_a_batch(core,
                                                                                 seeded):
    """SQLite has one writer: while a message is being stored, the batch commits after
    each mail instead of holding the database for all of them; nothing is left behind."""
    core.intake_gate = IntakeGate(max_wait=0.01)
    created = [new_task(core, seeded, title=f"line {n}") for n in range(4)]
    for each in created:
        core.run(mail_intake.receive, reply(each["id"], "Working on it."), "smtp")
    transactions = []
    event.listen(core.db, "begin", lambda connection: transactions.append(1))

    with core.intake_gate.storing():  # a sender's message on its way in
        assert mail.process_inbox(core) == 4
    assert len(transactions) == 1 + 4  # reading the batch, then one mail per transaction
    assert [m["status"] for m in core.run(mail_outcome.list_messages)] == ["applied"] * 4

    for each in created:
        core.run(mail_intake.receive, reply(each["id"], "Done."), "smtp")
    transactions.clear()
    assert mail.process_inbox(core) == 4  # nobody waiting: one transaction for the batch
    assert len(transactions) == 1 + 1


@pytest.mark.parametrize("batch", ["0", "many", "5000"])
def test_a_worker_with_a_wrong_batch_size_stops_with_one_line(core, batch):
    env = {**os.environ, "LIAISON_DATABASE_URL": core.settings.database_url,
           "LIAISON_INSTANCE_PATH": str(core.settings.instance_path),
           "LIAISON_MAIL_BATCH": batch}
    done = subprocess.run(liaison("worker"), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == \
        "liaison: error: LIAISON_MAIL_BATCH must be a number of mails from 1 to 1000"
