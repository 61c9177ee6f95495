"""The demo's round trip: Submit Request goes out by SOAP to the simulated provider, which
acknowledges back through the WorkflowService with its own credentials."""

from __future__ import annotations

import pytest

from engine.services import admin, queries, tasks
from engine.worker import Worker
from tests.support import wait_for
from webservice.simulator import SimulatedProvider, start_simulator


@pytest.fixture
def soap_provider(core, live_server):
    """A provider whose channel is SOAP, played by the simulator on another loopback port."""
    simulator = SimulatedProvider(live_server, None, None, delay=0.2)
    running = start_simulator("127.0.0.1", 0, simulator)
    created = core.run(admin.create_provider, "Sim Carrier", "soap", endpoint_url=running.url)
    simulator.username, simulator.password = created["username"], created["password"]
    core.run(admin.create_group, "Sim Group", integrated=True, provider="Sim Carrier")
    yield simulator
    running.stop()


def test_submit_request_out_and_acknowledgement_in(core, seeded, soap_provider):
    task = core.run(tasks.create_task, seeded["ticket"]["id"], "Check the line", "LDS-0042",
                    group="Sim Group")
    assert Worker(core).run_once() >= 1  # delivers Submit Request by SOAP

    [received] = soap_provider.received
    assert (received["operation"], received["taskId"]) == ("SubmitRequest", task["id"])
    reference = wait_for(lambda: core.run(tasks.get_task, task["id"])["external_reference"])
    [acknowledged] = wait_for(lambda: soap_provider.acknowledged)  # its answer came back too
    assert (reference, acknowledged["status"]) == (acknowledged["externalReference"], "accepted")

    exchanges = core.run(queries.exchanges_of_task, task["id"])
    assert [(e["request_type"], e["direction"], e["channel"], e["status"]) for e in exchanges] == [
        ("Submit Request", "Out", "soap", "delivered"), ("Acknowledgement", "In", "soap", "delivered")]
    [instance] = core.run(queries.instances_of_task, task["id"])
    assert instance["status"] == "completed"


def test_updates_and_closure_reach_the_provider(core, seeded, soap_provider):
    task = core.run(tasks.create_task, seeded["ticket"]["id"], "Check the line", "",
                    group="Sim Group")
    Worker(core).run_once()
    wait_for(lambda: core.run(tasks.get_task, task["id"])["external_reference"])
    core.run(tasks.add_update, task["id"], "Customer reports it is back", actor="ann")
    core.run(tasks.close_task, task["id"], "Fixed by the carrier", actor="ann")
    Worker(core).run_once()

    operations = [r["operation"] for r in soap_provider.received]
    assert operations == ["SubmitRequest", "SendUpdate", "CloseTask"]
    assert soap_provider.received[-1]["text"] == "Fixed by the carrier"
    assert soap_provider.received[-1]["externalReference"].startswith("SIM-")
