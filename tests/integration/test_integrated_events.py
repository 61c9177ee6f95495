"""The integrated-group events of CONTRACT §2, end to end through the services and worker."""

from __future__ import annotations

import pytest

from engine.domain.credentials import task_token
from engine.exceptions import Conflict, NotAuthorized, ReferenceMismatch, TaskClosed
from engine.services import admin, queries, tasks
from engine.services.inbound import (
    Inbound,
    acknowledge_external,
    reassign_external,
    update_external,
)
from engine.worker import Worker


def exchanges(core, task_id):
    return core.run(queries.exchanges_of_task, task_id)


def instances(core, task_id):
    return core.run(queries.instances_of_task, task_id)


def new_task(core, seeded, group="Carrier Group", title="Replace the router"):
    return core.run(tasks.create_task, seeded["ticket"]["id"], title, "Router dead", group=group)


def test_assignment_sends_submit_request_and_waits_for_acknowledgement(core, seeded, mailer):
    task = new_task(core, seeded)

    [exchange] = exchanges(core, task["id"])
    assert (exchange["request_type"], exchange["direction"], exchange["status"]) == \
        ("Submit Request", "Out", "pending")
    [instance] = instances(core, task["id"])
    assert instance["process_id"] == "liaison_new_assignment"
    assert instance["status"] == "waiting"
    assert instance["waiting_for"] == ["ExternalAcknowledgement"]

    assert Worker(core).run_once() >= 1
    [exchange] = exchanges(core, task["id"])
    assert exchange["status"] == "delivered" and exchange["attempts"] == 1
    [mail] = mailer.sent
    body = mail.get_content()
    assert mail["To"] == "noc@carrier.example"
    assert f"[Task #{task['id']}]" in mail["Subject"]
    assert f"TaskId: {task['id']}" in body
    assert f"Token: {task_token('test-secret-key', task['id'])}" in body
    assert "Replace the router" in body


def test_acknowledgement_completes_the_waiting_instance_and_sets_the_reference(core, seeded):
    task = new_task(core, seeded)
    result = core.run(acknowledge_external, task["id"], "CARRIER-1234",
                      Inbound(provider="Carrier", request_id="r-1"))

    assert result == {"taskId": task["id"], "externalReference": "CARRIER-1234",
                      "requestType": "Acknowledgement", "status": "accepted"}
    assert core.run(tasks.get_task, task["id"])["external_reference"] == "CARRIER-1234"
    [instance] = instances(core, task["id"])
    assert instance["status"] == "completed"
    kinds = [(e["request_type"], e["direction"]) for e in exchanges(core, task["id"])]
    assert kinds == [("Submit Request", "Out"), ("Acknowledgement", "In")]


def test_acknowledgement_for_one_task_never_completes_another(core, seeded):
    first, second = new_task(core, seeded, title="one"), new_task(core, seeded, title="two")
    core.run(acknowledge_external, second["id"], "REF-2")
    assert instances(core, first["id"])[0]["status"] == "waiting"
    assert instances(core, second["id"])[0]["status"] == "completed"


def test_repeated_request_id_or_reference_changes_nothing(core, seeded):
    task = new_task(core, seeded)
    source = Inbound(provider="Carrier", request_id="req-7")
    core.run(acknowledge_external, task["id"], "REF-7", source)
    again = core.run(acknowledge_external, task["id"], "REF-7", source)
    same_reference = core.run(acknowledge_external, task["id"], "REF-7", Inbound(provider="Carrier"))

    assert again["status"] == "duplicate" and same_reference["status"] == "duplicate"
    assert [e["request_type"] for e in exchanges(core, task["id"])].count("Acknowledgement") == 1


def test_a_provider_may_touch_only_its_own_groups_tasks(core, seeded):
    core.run(admin.create_provider, "Other", "email", email="ops@other.example")
    task = new_task(core, seeded)
    with pytest.raises(NotAuthorized):
        core.run(acknowledge_external, task["id"], "X-1", Inbound(provider="Other"))
    assert core.run(tasks.get_task, task["id"])["external_reference"] is None


def test_non_integrated_group_starts_nothing(core, seeded):
    task = new_task(core, seeded, group="Desk")
    core.run(tasks.add_update, task["id"], "looking into it")
    core.run(tasks.close_task, task["id"], "fixed locally")
    assert exchanges(core, task["id"]) == []
    assert instances(core, task["id"]) == []


def test_update_solution_decline_and_closure_record_their_exchanges(core, seeded):
    task = new_task(core, seeded)
    core.run(acknowledge_external, task["id"], "REF-9")
    core.run(tasks.add_update, task["id"], "Customer says it flaps every hour", actor="ann")
    with pytest.raises(Conflict):
        core.run(tasks.decline_solution, task["id"], "no solution yet")
    core.run(update_external, task["id"], "Engineer dispatched", "REF-9")
    core.run(reassign_external, task["id"], solution="Replaced the line card")
    assert core.run(tasks.get_task, task["id"])["solution"] == "Replaced the line card"
    core.run(tasks.decline_solution, task["id"], "Still flapping", actor="ann")
    core.run(tasks.close_task, task["id"], "Fixed after second visit", actor="ann")

    kinds = [(e["request_type"], e["direction"]) for e in exchanges(core, task["id"])]
    assert kinds == [("Submit Request", "Out"), ("Acknowledgement", "In"), ("Update", "Out"),
                     ("Update", "In"), ("Reassigned", "In"), ("Resolution Rejection", "Out"),
                     ("Closed", "Out")]
    processes = [i["process_id"] for i in instances(core, task["id"])]
    assert processes == ["liaison_new_assignment", "liaison_update_message",
                         "liaison_update_message", "liaison_closure"]
    assert all(i["status"] == "completed" for i in instances(core, task["id"]))


def test_closed_task_refuses_changes_from_agents_and_providers(core, seeded):
    task = new_task(core, seeded)
    core.run(tasks.close_task, task["id"], "done")
    with pytest.raises(TaskClosed):
        core.run(tasks.assign_task, task["id"], "Carrier Group")
    with pytest.raises(TaskClosed):
        core.run(tasks.add_update, task["id"], "more")
    with pytest.raises(TaskClosed):
        core.run(acknowledge_external, task["id"], "LATE-1", Inbound(provider="Carrier"))


def test_reassignment_after_the_task_came_back_submits_again(core, seeded):
    task = new_task(core, seeded)
    core.run(acknowledge_external, task["id"], "REF-1")
    core.run(reassign_external, task["id"], message="Not our fault, please check your side")
    core.run(tasks.assign_task, task["id"], "Desk")
    core.run(tasks.assign_task, task["id"], "Carrier Group")
    submits = [e for e in exchanges(core, task["id"]) if e["request_type"] == "Submit Request"]
    assert len(submits) == 2
    # The provider may answer a re-assignment with the same or a new reference.
    core.run(acknowledge_external, task["id"], "REF-2")
    assert core.run(tasks.get_task, task["id"])["external_reference"] == "REF-2"


def test_a_different_reference_outside_an_acknowledgement_wait_is_a_mismatch(core, seeded):
    task = new_task(core, seeded)
    core.run(acknowledge_external, task["id"], "REF-1")
    with pytest.raises(ReferenceMismatch):
        core.run(update_external, task["id"], "hello", "REF-OTHER")
    with pytest.raises(ReferenceMismatch):
        core.run(acknowledge_external, task["id"], "REF-OTHER")
