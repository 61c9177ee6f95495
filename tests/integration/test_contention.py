"""Writers of one task queue on its row lock (PostgreSQL); one that waits longer than the
lock bound is told `Busy`: REST 409, SOAP a typed Server fault saying a retry is safe."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from app import create_app
from engine.exceptions import Busy, ConcurrentUpdate
from engine.services import admin, models, processes, queries, tasks
from engine.services.inbound import (
    Inbound,
    acknowledge_external,
    reassign_external,
    update_external,
)
from engine.unit_of_work import LOCK_ATTEMPTS, RETRIES, classify
from tests.conftest import make_core, seed
from tests.fakes import FakeMailer
from tests.fixtures.soap.helpers import call, fault, result
from tests.integration.test_web_admin import APPROVAL

LOCK_BOUND = 0.2


@pytest.fixture
def pg_core(postgres_url, tmp_path):
    core = make_core(postgres_url, tmp_path, FakeMailer(), lock_timeout_seconds=LOCK_BOUND)
    yield core
    core.close()


@contextmanager
def held(core, task_id: int):
    """Another writer holding the task's row lock until the block ends."""
    with core.db.connect() as connection:
        connection.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task_id})
        yield
        connection.rollback()


@pytest.fixture
def scene(pg_core):
    data = seed(pg_core)
    task = pg_core.run(tasks.create_task, data["ticket"]["id"], "Line down",
                       group="Carrier Group")
    pg_core.run(acknowledge_external, task["id"], "REF-1")
    return {**data, "task": task}


def test_every_use_case_that_changes_a_task_waits_for_its_lock(pg_core, scene):
    task_id = scene["task"]["id"]
    pg_core.run(reassign_external, task_id, solution="rebooted")  # something to decline
    pg_core.run(models.deploy_process_model, APPROVAL, "approval.bpmn", "test")
    pg_core.run(admin.create_group, "Approvers", integrated=True, provider="Carrier",
                processes={"new_assignment": "approval", "update_message": "approval",
                           "closure": "approval"})
    approval = pg_core.run(tasks.create_task, scene["ticket"]["id"], "Approve", group="Approvers")
    [instance] = pg_core.run(queries.instances_of_task, approval["id"])
    writers = {
        "assign": lambda: pg_core.run(tasks.assign_task, task_id, "Desk"),
        "update": lambda: pg_core.run(tasks.add_update, task_id, "any news?"),
        "decline": lambda: pg_core.run(tasks.decline_solution, task_id, "still down"),
        "close": lambda: pg_core.run(tasks.close_task, task_id, "fixed"),
        "acknowledge": lambda: pg_core.run(acknowledge_external, task_id, "REF-1",
                                           Inbound(provider="Carrier", request_id="a-9")),
        "external update": lambda: pg_core.run(update_external, task_id, "working on it"),
        "external reassign": lambda: pg_core.run(reassign_external, task_id, solution="done"),
    }
    outcomes = {}
    for name, write in writers.items():
        with held(pg_core, task_id):
            try:
                write()
                outcomes[name] = "applied past the lock"
            except Busy as exc:
                outcomes[name] = "Busy" if "nothing was applied" in exc.message else exc.message
    assert outcomes == dict.fromkeys(writers, "Busy")
    with held(pg_core, approval["id"]), pytest.raises(Busy):
        pg_core.run(processes.complete_user_task, instance["id"], "approve", {}, "alice")
    page = pg_core.run(queries.task_page, task_id)
    assert page["task"]["status"] == "open" and page["task"]["group"] == "Carrier Group"
    assert "any news?" not in [n["text"] for n in page["notes"]]


def test_a_writer_queues_behind_a_short_lock_and_gets_through(pg_core, scene):
    task_id = scene["task"]["id"]
    release = threading.Event()

    def hold_briefly():
        with held(pg_core, task_id):
            release.set()
            time.sleep(LOCK_BOUND / 2)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    release.wait(10)
    assert pg_core.run(tasks.add_update, task_id, "after the queue")["id"] == task_id
    holder.join(10)


def test_a_timer_of_a_locked_task_waits_for_the_next_pass(pg_core, scene):
    waiting = pg_core.run(tasks.create_task, scene["ticket"]["id"], "No answer yet",
                          group="Carrier Group")  # its process waits, with an escalation timer
    later = pg_core.clock.now() + timedelta(days=1)
    with held(pg_core, waiting["id"]):
        assert pg_core.run(processes.fire_due_timers, later) == 0  # skipped, not blocked
    assert pg_core.run(processes.fire_due_timers, later) == 1


def test_busy_is_a_409_over_rest(pg_core, scene):
    pg_core.run(admin.create_user, "root", "root-password", "admin")
    auth = {"Authorization": f"Bearer {pg_core.run(admin.create_token, 'root')}"}
    client = create_app(core=pg_core).test_client()
    task_id = scene["task"]["id"]
    with held(pg_core, task_id):
        busy = client.post(f"/api/v1/tasks/{task_id}/updates", headers=auth,
                           json={"text": "hello"})
    assert busy.status_code == 409 and busy.json["error"]["code"] == "Busy"
    assert client.post(f"/api/v1/tasks/{task_id}/updates", headers=auth,
                       json={"text": "hello"}).status_code == 200


def test_busy_is_a_typed_soap_server_fault_and_the_retry_applies_once(pg_core, scene, caplog):
    client = create_app(core=pg_core).test_client()
    task_id, creds = scene["task"]["id"], scene["provider"]
    fields = {"taskId": task_id, "message": "Engineer on site", "requestId": "upd-7"}
    op = "ProcessInstanceTaskExternalUpdateMessage"
    caplog.set_level(logging.WARNING)
    with held(pg_core, task_id):
        refused = call(client, op, fields, creds)
    code, text_ = fault(refused)
    assert (refused.status_code, code) == (500, "Server")
    assert text_.startswith("Busy: ") and "Retrying with the same requestId is safe" in text_
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    assert result(call(client, op, fields, creds), op)["status"] == "accepted"
    assert result(call(client, op, fields, creds), op)["status"] == "duplicate"
    notes = [n["text"] for n in pg_core.run(queries.task_page, task_id)["notes"]]
    assert notes.count("Engineer on site") == 1


def test_retries_are_bounded_and_answered_with_the_right_code(core):
    calls = []

    def stale(uow):
        calls.append("stale")
        raise StaleDataError("version mismatch")

    def locked(uow):
        calls.append("locked")
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    with pytest.raises(ConcurrentUpdate, match="nothing was applied"):
        core.run(stale)
    with pytest.raises(Busy, match="nothing was applied"):
        core.run(locked)
    assert calls.count("stale") == RETRIES and calls.count("locked") == LOCK_ATTEMPTS


def test_what_is_worth_a_retry():
    class PgError(Exception):
        def __init__(self, sqlstate):
            super().__init__(f"state {sqlstate}")
            self.sqlstate = sqlstate

    def db_error(orig):
        return OperationalError("UPDATE", {}, orig)

    assert classify(db_error(PgError("55P03"))) == "locked"  # lock_timeout
    assert classify(db_error(PgError("40001"))) == "conflict"  # serialization failure
    assert classify(db_error(PgError("40P01"))) == "conflict"  # deadlock
    assert classify(db_error(PgError("08006"))) is None  # connection failure: not here
    assert classify(StaleDataError("x")) == "conflict"
    assert classify(ValueError("x")) is None
