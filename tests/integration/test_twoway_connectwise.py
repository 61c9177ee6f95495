"""The two-way link with the simulated ConnectWise over HTTP (SQLite and PostgreSQL): the
callback registered when inbound is enabled, provider-opened tickets for a linked and an
unknown site, notes and statuses back as inbound events, our own changes left out, sites and
devices downloaded, and a close here closing the ticket there."""

from __future__ import annotations

import pytest

from engine.services import (
    admin,
    inbound_settings,
    links,
    psa_inbound,
    psa_settings,
    queries,
    task_links,
    tasks,
)
from engine.worker import Worker
from tests.conftest import make_core
from tests.integration.test_connectwise_channel import MEMBER, connect
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


@pytest.fixture
def cw(any_db_url, tmp_path, mailer, simulator):
    core = make_core(any_db_url, tmp_path, mailer)
    provider_id = connect(core, simulator.url)
    core.run(psa_settings.put_settings, provider_id,
             {"board": "Managed NOC", "service_type": "Incident", "company": "ACMERetail",
              "auto_close": True})
    core.run(admin.create_group, "Service Desk", integrated=False)
    yield core, provider_id
    core.close()


def work(core, rounds: int = 3) -> None:
    """What the worker does: deliveries, and the poller with the queue."""
    for _ in range(rounds):
        Worker(core).deliver_due()
        psa_inbound.poll_job(core)


def task_for(core, reference: str) -> dict:
    found = [t for t in core.run(queries.list_tasks, None, None, reference)["items"]
             if t["external_reference"] == reference]
    assert found, f"no task for ticket {reference}"
    return core.run(queries.task_page, found[0]["id"])


@pytest.mark.postgres
def test_provider_tickets_for_linked_and_unknown_sites_and_their_changes(cw, simulator):
    core, provider_id = cw
    sim = simulator.simulator
    assert psa_inbound.refresh_sites(core, provider_id)["sites"] == 3
    acme = core.run(tasks.create_ticket, "x", "", customer="ACME Retail")["customer_id"]
    core.run(links.link_site, provider_id, "2", customer_id=acme)  # ACME Retail's company
    core.run(inbound_settings.set_inbound, provider_id,
             {"inbound_group": "Service Desk", "inbound_enabled": True})
    Worker(core).deliver_due()
    [callback] = sim.state.rows("callbacks")  # registered through the channel and outbox
    assert callback["url"].endswith(
        core.run(inbound_settings.inbound_status, provider_id)["callback_url"].rsplit("/", 1)[1])
    assert callback["isSelfSuppressedFlag"] is True

    linked = sim.provider_opens_ticket("Firewall CPU at 95%", "ACMERetail", configuration=2,
                                       description="Alert from monitoring")
    unknown = sim.provider_opens_ticket("Backup job failed", "NorthwindLtd")
    work(core)
    page = task_for(core, str(linked["id"]))
    assert page["task"]["customer"] == "ACME Retail" and page["task"]["group"] == "Service Desk"
    assert "Alert from monitoring" in page["task"]["description"]
    assert "Device: ACME-FW-1 · Serial: FGT60F0001" in page["task"]["description"]
    assert page["exchanges"][0]["request_type"] == "New Ticket"
    assert task_for(core, str(unknown["id"]))["task"]["customer"] == \
        "[NOC AUTO CREATED] Northwind Ltd"

    sim.provider_adds_note(linked["id"], "We are on it")
    sim.provider_sets_status(linked["id"], "Info Needed")
    work(core)
    page = task_for(core, str(linked["id"]))
    kinds = [(e["request_type"], e["direction"]) for e in page["exchanges"]]
    assert kinds[:3] == [("New Ticket", "In"), ("Update", "In"), ("Reassigned", "In")]
    assert any("Info Needed" in n["text"] for n in page["notes"])
    assert page["task"]["status"] == "open"

    # Update ticket in NOC from the task page, then a close here closes it there
    core.run(task_links.send_to_provider, page["task"]["id"], "NOC", "Which rule fired?", "agent")
    core.run(tasks.close_task, page["task"]["id"], "Rule tuned", actor="agent")
    work(core)
    assert any(n["text"] == "Which rule fired?" for n in sim.notes(linked["id"]))
    closed = sim.state.get("tickets", linked["id"])
    assert closed["closedFlag"] is True
    page = task_for(core, str(linked["id"]))
    # our own note and close are not taken back as the provider's
    assert [e["request_type"] for e in page["exchanges"] if e["direction"] == "In"] == [
        "New Ticket", "Update", "Reassigned"]


@pytest.mark.postgres
def test_our_ticket_comes_back_resolved_and_the_callback_only_hints(cw, simulator, app_for):
    core, provider_id = cw
    sim = simulator.simulator
    core.run(inbound_settings.set_inbound, provider_id,
             {"inbound_group": "Service Desk", "inbound_enabled": True})
    ticket = core.run(tasks.create_ticket, "Leeds offline", "", customer="ACME")
    task_id = core.run(tasks.create_task, ticket["id"], "Router down", "Serial 4711",
                       group="Managed NOC")["id"]
    work(core)
    reference = core.run(queries.task_detail, task_id)["external_reference"]
    sim.provider_sets_status(int(reference), "Work completed")
    sim.provider_adds_note(int(reference), "Replaced the PSU", resolution=True)
    client = app_for(core).test_client()
    key = core.run(inbound_settings.inbound_status, provider_id)["callback_url"].rsplit("/", 1)[1]
    forged = {"Action": "updated", "Type": "ticket", "ID": int(reference),
              "Entity": '{"status": {"name": "Closed"}}'}
    assert client.post(f"/api/v1/psa-callbacks/{key}/{reference}", json=forged).status_code == 200
    work(core)
    page = core.run(queries.task_page, task_id)
    assert page["task"]["solution"] == "Replaced the PSU" and page["task"]["status"] == "open"
    inbound_kinds = [e["request_type"] for e in page["exchanges"] if e["direction"] == "In"]
    assert inbound_kinds == ["Acknowledgement", "Update", "Reassigned"]


@pytest.fixture
def app_for():
    from app import create_app

    def make(core):
        app = create_app(core=core)
        app.config.update(TESTING=True)
        return app
    return make
