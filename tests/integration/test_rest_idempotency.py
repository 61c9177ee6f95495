"""`Idempotency-Key` on the REST API's POSTs: a client that lost its connection repeats the
request and gets the first answer; the request is applied once (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import update

from app import create_app
from engine.adapters import orm
from engine.services import admin, queries
from engine.services.idempotency import RETENTION
from engine.worker import Worker
from forms import idempotency as rest_idempotency
from tests.conftest import make_core, seed
from tests.fakes import FakeClock, FakeMailer
from tests.integration.test_rest_api import bpmn


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def db_core(any_db_url, tmp_path, clock):
    core = make_core(any_db_url, tmp_path, FakeMailer(), clock=clock)
    yield core
    core.close()


@pytest.fixture
def client(db_core):
    app = create_app(core=db_core)
    app.config.update(TESTING=True)
    return app.test_client()


def bearer(core, name: str, role: str = "admin") -> dict:
    core.run(admin.create_user, name, f"{name}-password", role)
    return {"Authorization": f"Bearer {core.run(admin.create_token, name)}"}


@pytest.fixture
def auth(db_core):
    seed(db_core)
    return bearer(db_core, "root")


def keyed(auth: dict, key: str) -> dict:
    return {**auth, "Idempotency-Key": key}


def tasks_titled(core, title: str) -> list[dict]:
    return [t for t in core.run(queries.list_tasks, None, None, None, 1)["items"]
            if t["title"] == title]


def test_a_repeated_post_answers_the_first_answer_and_applies_once(db_core, client, auth):
    body = {"title": "Link down", "description": "Leeds", "group": "Carrier Group"}
    first = client.post("/api/v1/tickets/1/tasks", headers=keyed(auth, "k-1"), json=body)
    again = client.post("/api/v1/tickets/1/tasks", headers=keyed(auth, "k-1"), json=body)

    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(tasks_titled(db_core, "Link down")) == 1
    exchanges = db_core.run(queries.exchanges_of_task, first.json["id"])
    assert [e["request_type"] for e in exchanges] == ["Submit Request"]
    # without a key, a repeat is a new request
    client.post("/api/v1/tickets/1/tasks", headers=auth, json=body)
    assert len(tasks_titled(db_core, "Link down")) == 2


def test_the_same_key_with_another_request_is_refused(db_core, client, auth):
    first = client.post("/api/v1/tickets", headers=keyed(auth, "k-2"), json={"title": "A"})
    other = client.post("/api/v1/tickets", headers=keyed(auth, "k-2"), json={"title": "B"})
    path = client.post("/api/v1/groups", headers=keyed(auth, "k-2"), json={"name": "G"})

    assert first.status_code == 201
    for refused in (other, path):
        assert refused.status_code == 422
        assert refused.json["error"]["field"] == "Idempotency-Key"
    # the same data in another key order is the same request
    same = client.post("/api/v1/tickets", headers=keyed(auth, "k-3"),
                       json={"title": "C", "description": "d"})
    assert client.post("/api/v1/tickets", headers=keyed(auth, "k-3"),
                       data='{"description": "d",  "title": "C"}',
                       content_type="application/json").json == same.json


def test_keys_belong_to_their_token(db_core, client, auth):
    other = bearer(db_core, "agent7", "agent")
    mine = client.post("/api/v1/tickets", headers=keyed(auth, "shared"), json={"title": "Mine"})
    theirs = client.post("/api/v1/tickets", headers=keyed(other, "shared"),
                         json={"title": "Theirs"})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json["id"] != theirs.json["id"]


def test_every_post_of_the_api_takes_the_key(db_core, client, auth):
    """Providers (its password shown once), actions, uploads, other blueprints: generic."""
    provider = {"name": "Vendor", "channel": "email", "email": "v@vendor.example"}
    created = [client.post("/api/v1/providers", headers=keyed(auth, "p"), json=provider)
               for _ in range(2)]
    assert created[0].status_code == 201 and created[1].json == created[0].json
    assert "password" in created[1].json

    task = client.post("/api/v1/tickets/1/tasks", headers=auth,
                       json={"title": "Noisy line", "group": "Desk"}).json
    for _ in range(2):
        assert client.post(f"/api/v1/tasks/{task['id']}/updates", headers=keyed(auth, "u"),
                           json={"text": "checked the wiring"}).status_code == 200
    notes = db_core.run(queries.task_page, task["id"])["notes"]
    assert [n["text"] for n in notes].count("checked the wiring") == 1

    versions = [client.post("/api/v1/process-models", headers=keyed(auth, "m"),
                            data={"file": (io.BytesIO(bpmn("idem")), "idem.bpmn")},
                            content_type="multipart/form-data").json for _ in range(2)]
    assert versions[0] == versions[1] and versions[0]["version"] == 1

    rule = {"name": "noise", "action": "skip",
            "conditions": [{"field": "subject", "value": "newsletter"}]}
    rules = [client.post("/api/v1/mail-rules", headers=keyed(auth, "r"), json=rule)
             for _ in range(2)]
    assert rules[0].status_code == 201 and rules[1].json == rules[0].json


def test_a_request_that_applied_nothing_keeps_no_record(db_core, client, auth):
    bad = client.post("/api/v1/tickets", headers=keyed(auth, "k-4"), json={"title": ""})
    assert bad.status_code == 422
    good = client.post("/api/v1/tickets", headers=keyed(auth, "k-4"), json={"title": "Fixed"})
    assert good.status_code == 201
    unauthenticated = client.post("/api/v1/tickets", json={"title": "x"},
                                  headers={"Authorization": "Bearer nope",
                                           "Idempotency-Key": "k-5"})
    assert unauthenticated.status_code == 401


def test_the_api_document_names_the_header_on_every_post(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    posts = [operations["post"] for operations in paths.values() if "post" in operations]
    assert posts and all(any(p["name"] == "Idempotency-Key" and p["in"] == "header"
                             for p in post["parameters"]) for post in posts)


def test_an_unusable_key_is_refused(client, auth):
    response = client.post("/api/v1/tickets", headers=keyed(auth, "x" * 201),
                           json={"title": "A"})
    assert response.status_code == 422
    assert response.json["error"]["field"] == "Idempotency-Key"


def test_an_answer_lost_with_its_process_is_given_again_from_the_record(db_core, client, auth,
                                                                         monkeypatch):
    monkeypatch.setattr(rest_idempotency, "ANSWER_WAIT", 0.1)
    body = {"title": "Crashed answer", "group": "Carrier Group"}
    first = client.post("/api/v1/tickets/1/tasks", headers=keyed(auth, "k-6"), json=body)
    with db_core.db.begin() as connection:  # the process died after its commit
        connection.execute(update(orm.IdempotencyRecord).values(status_code=None, response=None))

    again = client.post("/api/v1/tickets/1/tasks", headers=keyed(auth, "k-6"), json=body)
    assert (again.status_code, again.json) == (201, first.json)
    assert len(tasks_titled(db_core, "Crashed answer")) == 1
    assert client.post("/api/v1/tickets/1/tasks", headers=keyed(auth, "k-6"),
                       json=body).headers["Idempotent-Replayed"] == "true"


def test_two_copies_at_the_same_moment_apply_once(db_core, auth):
    app = create_app(core=db_core)
    body = {"title": "Twins", "group": "Carrier Group"}
    barrier, answers = threading.Barrier(4), []

    def post():
        with app.test_client() as client:
            barrier.wait()
            answers.append(client.post("/api/v1/tickets/1/tasks",
                                       headers=keyed(auth, "twin"), json=body))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json["id"] for a in answers}) == 1
    assert len(tasks_titled(db_core, "Twins")) == 1
    [task] = tasks_titled(db_core, "Twins")
    assert len(db_core.run(queries.instances_of_task, task["id"])) == 1


def test_records_expire_and_are_purged_by_a_job(db_core, client, auth, clock):
    client.post("/api/v1/tickets", headers=keyed(auth, "old"), json={"title": "Old"})
    clock.advance(hours=25)
    worker = Worker(db_core, name="w1")
    worker.run_jobs()
    clock.advance(seconds=3601)
    worker.run_jobs()  # the purge runs hourly
    with db_core.db.connect() as connection:
        left = connection.execute(orm.IdempotencyRecord.__table__.select()).all()
    assert left == []
    again = client.post("/api/v1/tickets", headers=keyed(auth, "old"), json={"title": "Old"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers


def test_an_expired_record_no_longer_answers(db_core, client, auth, clock):
    first = client.post("/api/v1/tickets", headers=keyed(auth, "exp"), json={"title": "T"})
    clock.advance(seconds=RETENTION.total_seconds() + 1)
    second = client.post("/api/v1/tickets", headers=keyed(auth, "exp"), json={"title": "T"})
    assert second.json["id"] != first.json["id"]
