"""WS-Security on inbound events: the nonce is stored in the event's own transaction and the
login this process checked (possibly from its cache) is confirmed there, so a replay is refused
and a password changed by another process stops working at once."""

from __future__ import annotations

from app import create_app
from engine.core import Core
from engine.services import admin, queries, tasks
from tests.fixtures.soap.helpers import PATH, envelope, fault, result, security_header

ACK = "ProcessInstanceTaskExternalAcknowledgement"
REPLAYED = ("Client", "NotAuthorized: the WS-Security nonce was used before")


def new_task(core, seeded) -> dict:
    return core.run(tasks.create_task, seeded["ticket"]["id"], "Router dead", "", group="Carrier Group")


def ack_body(task_id: int, reference: str, username: str, password: str) -> bytes:
    header = security_header(username, password, digest=True)
    return envelope(ACK, {"taskId": task_id, "externalReference": reference}, header)


def post(client, body: bytes):
    return client.post(PATH, data=body, content_type="text/xml")


def test_a_replayed_acknowledgement_is_refused_and_changes_nothing(core, seeded, client):
    creds = seeded["provider"]
    task = new_task(core, seeded)
    body = ack_body(task["id"], "CAR-1", creds["username"], creds["password"])
    assert result(post(client, body), ACK)["status"] == "accepted"

    assert fault(post(client, body)) == REPLAYED
    exchanges = [e["request_type"] for e in core.run(queries.exchanges_of_task, task["id"])]
    assert exchanges.count("Acknowledgement") == 1


def test_a_refused_event_still_uses_up_its_nonce(core, seeded, client):
    creds = seeded["provider"]
    body = ack_body(999_999, "CAR-2", creds["username"], creds["password"])
    assert fault(post(client, body))[1].startswith("TaskNotFound")
    assert fault(post(client, body)) == REPLAYED


def test_a_password_regenerated_by_another_process_is_refused_at_once(core, seeded, client,
                                                                       tmp_path):
    creds = seeded["provider"]
    task = new_task(core, seeded)
    warm = ack_body(task["id"], "CAR-3", creds["username"], creds["password"])
    assert result(post(client, warm), ACK)["status"] == "accepted"  # the login is now cached

    other = Core(core.settings)  # another process on the same database
    renewed = other.run(admin.regenerate_provider_password, "Carrier")
    other.close()

    second = new_task(core, seeded)
    stale = post(client, ack_body(second["id"], "CAR-4", creds["username"], creds["password"]))
    assert fault(stale) == ("Client", "NotAuthorized: the provider's credentials have changed")
    assert core.run(tasks.get_task, second["id"])["external_reference"] is None
    fresh = post(client, ack_body(second["id"], "CAR-4", creds["username"], renewed["password"]))
    assert result(fresh, ACK)["status"] == "accepted"
    assert fault(post(client, ack_body(second["id"], "CAR-4", creds["username"],
                                       creds["password"])))[1].startswith("NotAuthorized")


def test_a_new_server_process_refuses_a_nonce_an_event_used(core, seeded, client):
    creds = seeded["provider"]
    task = new_task(core, seeded)
    body = ack_body(task["id"], "CAR-5", creds["username"], creds["password"])
    assert result(post(client, body), ACK)["status"] == "accepted"
    restarted = create_app(core=core).test_client()
    assert fault(post(restarted, body)) == REPLAYED


def test_a_request_refused_before_any_operation_still_uses_up_its_nonce(core, seeded, client):
    creds = seeded["provider"]
    task = new_task(core, seeded)
    header = security_header(creds["username"], creds["password"], digest=True)
    invalid = envelope(ACK, {"taskId": "not-a-number", "externalReference": "X"}, header)
    assert fault(post(client, invalid))[1].startswith("InvalidInput")
    valid = envelope(ACK, {"taskId": task["id"], "externalReference": "CAR-6"}, header)
    assert fault(post(client, valid)) == REPLAYED
    assert core.run(tasks.get_task, task["id"])["external_reference"] is None
