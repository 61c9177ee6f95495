"""The SQL statements of the mail hot paths, counted (write-path §8): a regression fails here,
not only in bench/mail.py. Counted on SQLite and PostgreSQL; transaction control (BEGIN)
and the pool's liveness pings are not statements of the path."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from engine.services import mail, mail_intake, mail_outcome
from tests.conftest import seed
from tests.integration.test_mail_support import new_task, reply

# Applying a batch: the pending mail and the rules (2), the claim, earlier Message-IDs and
# mails per sender (3); then per mail the reply's provider by sender (once per sender), the
# task with its group and provider (1, plain rows, locked: on PostgreSQL the lock wait bound
# is set by that statement), the inbound use case (today 5: the task with the request id's
# earlier answer, note, exchange, waiting instances, the task's update) and the mail's
# outcome (1). No savepoints while no mail of the batch raises.
PER_SENDER = 1


def per_batch(core) -> int:
    return 5


def per_mail(core) -> int:
    return 7


class Statements:
    def __init__(self, engine) -> None:
        self.seen: list[str] = []
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, connection, cursor, statement, parameters, context, executemany):
        if not statement.startswith("BEGIN") and statement.strip() != "SELECT 1":
            self.seen.append(statement)

    def during(self, action) -> list[str]:
        self.seen = []
        action()
        return list(self.seen)


@pytest.fixture
def counted(any_core):
    return any_core, seed(any_core), Statements(any_core.db)


def test_storing_a_mail_is_one_statement_a_repeat_too(counted):
    core, seeded, statements = counted
    raw = reply(new_task(core, seeded)["id"], "ExternalReference: S-1")

    for _ in range(2):  # the first copy, then a repeat counted on it
        [upsert] = statements.during(lambda: core.run(mail_intake.receive, raw, "smtp"))
        assert upsert.startswith("INSERT INTO mail_inbox") and "ON CONFLICT" in upsert
    assert core.run(mail_outcome.list_messages)[0]["repeats"] == 1


def test_applying_one_reply(counted):
    core, seeded, statements = counted
    created = new_task(core, seeded)
    core.run(mail_intake.receive, reply(created["id"], "Engineer on site.\nAction: Update"),
             "smtp")

    applied = statements.during(lambda: mail.process_inbox(core))
    assert core.run(mail_outcome.list_messages)[0]["status"] == "applied"
    assert len(applied) <= per_batch(core) + PER_SENDER + per_mail(core), applied


def test_a_batch_pays_its_reads_once(counted):
    core, seeded, statements = counted
    core.settings = core.settings.with_overrides(extra={"LIAISON_MAIL_RATE_LIMIT": "100/600"})
    created = [new_task(core, seeded, title=f"line {n}") for n in range(10)]
    for each in created:
        core.run(mail_intake.receive, reply(each["id"], "Still looking.\nAction: Update"),
                 "smtp")

    applied = statements.during(lambda: mail.process_inbox(core))
    assert [m["status"] for m in core.run(mail_outcome.list_messages)] == ["applied"] * 10
    assert len(applied) <= per_batch(core) + PER_SENDER + 10 * per_mail(core), applied
