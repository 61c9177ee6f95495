"""zeep, a generated-from-WSDL client, against a real server on loopback."""

from __future__ import annotations

import pytest
import zeep
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from engine.services import queries, tasks
from engine.services.demo import DEMO_GROUP, load_demo
from tests.fixtures.soap.helpers import PATH

SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def client_for(base: str, username: str, password: str, digest: bool = False,
               binding: str = "WorkflowServiceSoap"):
    client = zeep.Client(base + PATH + "?wsdl", settings=SETTINGS,
                         wsse=UsernameToken(username, password, use_digest=digest))
    return client.bind("WorkflowService", binding)


@pytest.fixture
def task(core, seeded):
    return core.run(tasks.create_task, seeded["ticket"]["id"], "Replace the router", "Dead",
                    group="Carrier Group")


@pytest.mark.parametrize("binding", ["WorkflowServiceSoap", "WorkflowServiceSoap12"])
@pytest.mark.parametrize("digest", [False, True], ids=["text", "digest"])
def test_every_operation_through_zeep(core, seeded, live_server, task, binding, digest):
    provider = seeded["provider"]
    service = client_for(live_server, provider["username"], provider["password"], digest, binding)

    ack = service.ProcessInstanceTaskExternalAcknowledgement(
        taskId=task["id"], externalReference="CAR-100", requestId="ack-1")
    assert (ack.taskId, ack.externalReference, ack.requestType, ack.status) == \
        (task["id"], "CAR-100", "Acknowledgement", "accepted")
    again = service.ProcessInstanceTaskExternalAcknowledgement(
        taskId=task["id"], externalReference="CAR-100", requestId="ack-1")
    assert again.status == "duplicate"
    update = service.ProcessInstanceTaskExternalUpdateMessage(taskId=task["id"],
                                                              message="Engineer dispatched")
    assert update.requestType == "Update"
    back = service.ProcessInstanceTaskExternalReassignment(taskId=task["id"],
                                                           solution="Replaced the PSU")
    assert back.requestType == "Reassigned"
    state = service.GetProcessInstanceTask(taskId=task["id"])
    assert (state.taskId, state.externalReference, state.solution, state.status) == \
        (task["id"], "CAR-100", "Replaced the PSU", "open")
    assert state.createdAt.tzinfo is not None
    kinds = [(e["request_type"], e["direction"])
             for e in core.run(queries.exchanges_of_task, task["id"])]
    assert kinds == [("Submit Request", "Out"), ("Acknowledgement", "In"), ("Update", "In"),
                     ("Reassigned", "In")]


@pytest.mark.parametrize("binding", ["WorkflowServiceSoap", "WorkflowServiceSoap12"])
def test_faults_reach_zeep_with_their_codes(seeded, live_server, task, binding):
    provider = seeded["provider"]
    service = client_for(live_server, provider["username"], provider["password"], True, binding)
    with pytest.raises(Fault) as missing:
        service.GetProcessInstanceTask(taskId=999_999)
    assert missing.value.message == "TaskNotFound: task 999999 not found"
    assert missing.value.code.endswith("Client" if binding.endswith("Soap") else "Sender")

    wrong = client_for(live_server, provider["username"], "not-the-password", True, binding)
    with pytest.raises(Fault, match="^NotAuthorized: invalid username or password$"):
        wrong.GetProcessInstanceTask(taskId=task["id"])


def test_the_wsdl_zeep_reads_points_at_the_public_url(core, live_server):
    client = zeep.Client(live_server + PATH + "?wsdl", settings=SETTINGS)
    ports = client.wsdl.services["WorkflowService"].ports
    assert {name: port.binding_options["address"] for name, port in ports.items()} == {
        "WorkflowServiceSoap": core.settings.public_url + PATH,
        "WorkflowServiceSoap12": core.settings.public_url + PATH}


def test_a_newcomer_acknowledges_the_demo_task_with_the_demo_credentials(core, live_server):
    creds = load_demo(core)
    [demo_task] = [t for t in core.run(queries.list_tasks, None, None, None)["items"]
                   if t["group"] == DEMO_GROUP]
    service = client_for(live_server, creds["provider_username"], creds["provider_password"],
                         digest=True)

    answer = service.ProcessInstanceTaskExternalAcknowledgement(
        taskId=demo_task["id"], externalReference="DEMO-1")

    assert answer.status == "accepted"
    assert core.run(tasks.get_task, demo_task["id"])["external_reference"] == "DEMO-1"
    kinds = [(e["request_type"], e["direction"])
             for e in core.run(queries.exchanges_of_task, demo_task["id"])]
    assert ("Acknowledgement", "In") in kinds
