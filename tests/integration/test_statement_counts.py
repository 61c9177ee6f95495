"""SQL statements per hot path, counted on SQLite and PostgreSQL: a regression that adds a
round trip (a lazy load, a look-up the caches should spare, a second transaction) fails here,
not only in a benchmark (bench/events.py, bench/soap.py).

Counted: statements sent through SQLAlchemy (BEGIN excluded), transactions begun, commits.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from engine.services import admin, inbound, tasks
from tests.conftest import seed
from tests.fixtures.soap.helpers import call, result

ACK = "ProcessInstanceTaskExternalAcknowledgement"


class Counted:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.transactions = 0
        self.commits = 0

    def kinds(self) -> list[str]:
        """`VERB table` of each statement, for readable failures."""
        out = []
        for sql in self.statements:
            verb = sql.split(None, 1)[0].upper()
            # the table of the first selected column, or the one written to
            table = re.match(r"\s*(?:WITH\b.*?\n\s*)?SELECT\s+(\w+)\.", sql, re.S) or re.search(
                r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", sql, re.IGNORECASE)
            out.append(f"{verb} {table.group(1) if table else '?'}")
        return out


@contextmanager
def counting(engine):
    counted = Counted()

    def on_execute(conn, cursor, statement, params, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            counted.statements.append(statement)

    def on_begin(conn):
        counted.transactions += 1

    def on_commit(conn):
        counted.commits += 1

    listeners = [("before_cursor_execute", on_execute), ("begin", on_begin),
                 ("commit", on_commit)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield counted
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


@pytest.fixture
def world(any_core):
    data = seed(any_core)
    # warm the process-wide caches (parsed specs by model id), as in a running server
    warm = any_core.run(tasks.create_task, data["ticket"]["id"], "warm-up", "", group="Carrier Group")
    any_core.run(inbound.acknowledge_external, warm["id"], "WARM-1")
    return data


def new_task(core, world) -> dict:
    return core.run(tasks.create_task, world["ticket"]["id"], "Router dead", "Leeds",
                    group="Carrier Group")


def lock_bound(core) -> int:
    """On PostgreSQL a unit of work that locks a task through the ORM first bounds its lock
    wait (`SET LOCAL lock_timeout`, one statement): see Repository.task_for_update. The hot
    paths' plain-row read sets it in the locking statement itself (task_row_for_update)."""
    return 1 if core.db.dialect.name == "postgresql" else 0


def check(counted: Counted, budget: int) -> None:
    kinds = counted.kinds()
    assert len(counted.statements) == budget, f"{len(kinds)} statements, not {budget}: {kinds}"
    assert (counted.transactions, counted.commits) == (1, 1), kinds


def test_new_assignment_reads_twice_and_inserts_each_row_once(any_core, world):
    with counting(any_core.db) as counted:
        new_task(any_core, world)
    # ticket and group (with provider, bindings and their latest model ids) in one statement;
    # task, exchange, outbox row, process instance. No model read: specs are cached by id.
    check(counted, 5)
    assert not any("bpmn_xml" in s for s in counted.statements), counted.kinds()


def test_reassignment(any_core, world):
    task = new_task(any_core, world)
    any_core.run(admin.create_group, "Desk 2", integrated=False)
    any_core.run(tasks.assign_task, task["id"], "Desk 2")
    with counting(any_core.db) as counted:
        any_core.run(tasks.assign_task, task["id"], "Carrier Group")
    # task, group; note, exchange, outbox, instance; the task's update
    check(counted, 7 + lock_bound(any_core))


def test_inbound_acknowledgement_with_its_nonce_in_one_transaction(any_core, world):
    task = new_task(any_core, world)
    source = inbound.Inbound(provider="Carrier", request_id="r-1", nonce="bm9uY2UtMQ==")
    with counting(any_core.db) as counted:
        answer = any_core.run(inbound.acknowledge_external, task["id"], "REF-1", source)
    assert answer["status"] == "accepted"
    # task with its group, provider and the request id's earlier answer (none); nonce;
    # waiting instances; exchange; the instance's new state; the task's update
    check(counted, 6)
    assert sum(s.startswith("INSERT INTO ws_nonces") for s in counted.statements) == 1


@pytest.mark.parametrize("use_case, args", [
    (inbound.update_external, ("Engineer on site",)),
    (inbound.reassign_external, ("Replaced the SFP",)),
])
def test_inbound_update_and_reassignment(any_core, world, use_case, args):
    task = new_task(any_core, world)
    source = inbound.Inbound(provider="Carrier", request_id="r-2", nonce="bm9uY2UtMg==")
    with counting(any_core.db) as counted:
        any_core.run(use_case, task["id"], *args, source=source)
    # task (+ request id); nonce; note; exchange; waiting instances; the task's update
    check(counted, 6)


def test_a_repeated_request_reads_its_first_answer_and_keeps_the_nonce(any_core, world):
    task = new_task(any_core, world)
    any_core.run(inbound.acknowledge_external, task["id"], "REF-2",
                 inbound.Inbound(provider="Carrier", request_id="r-3"))
    again = inbound.Inbound(provider="Carrier", request_id="r-3", nonce="bm9uY2UtMw==")
    with counting(any_core.db) as counted:
        answer = any_core.run(inbound.acknowledge_external, task["id"], "REF-2", again)
    assert answer["status"] == "duplicate"
    check(counted, 2)  # task with the earlier answer; nonce


def test_soap_acknowledgement_is_one_transaction_once_the_login_is_known(any_core, world):
    from app import create_app

    client = create_app(core=any_core).test_client()
    creds = {"username": world["provider"]["username"], "password": world["provider"]["password"]}
    first, second = new_task(any_core, world), new_task(any_core, world)
    with counting(any_core.db) as cold:
        result(call(client, ACK, {"taskId": first["id"], "externalReference": "S-1"}, creds,
                    digest=True), ACK)
    with counting(any_core.db) as warm:
        answer = result(call(client, ACK, {"taskId": second["id"], "externalReference": "S-2"},
                             creds, digest=True), ACK)
    assert answer["status"] == "accepted"
    assert cold.transactions == 2, cold.kinds()  # the provider's login read once, then the event
    # the nonce is stored with the event, not in a transaction of its own
    check(warm, 6)
    assert any(s.startswith("INSERT INTO ws_nonces") for s in warm.statements), warm.kinds()
