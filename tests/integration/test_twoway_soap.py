"""Provider-opened tickets by SOAP `CreateExternalTicket` (CONTRACT §7): the inbound switch and
queue, customers by site link (AUTO CREATED for an unknown site), devices, duplicates, WSDL
and help page."""

from __future__ import annotations

import pytest

from engine.services import admin, customers, inbound_queue, queries
from tests.fixtures.soap.helpers import call, fault, result

CREATE = "CreateExternalTicket"


@pytest.fixture
def carrier(seeded):
    return {"username": seeded["provider"]["username"], "password": seeded["provider"]["password"]}


@pytest.fixture
def manager(core):
    core.run(admin.create_user, "imgr", "manager-password", "integration_manager")
    return {"Authorization": f"Bearer {core.run(admin.create_token, 'imgr')}"}


def enable(client, manager, provider_id, group="Desk"):
    response = client.patch(f"/api/v1/providers/{provider_id}", headers=manager,
                            json={"inbound_group": group, "inbound_enabled": True})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def open_ticket(client, creds, **fields):
    return result(call(client, CREATE, fields, creds), CREATE)


def task_of(core, task_id):
    return core.run(queries.task_page, int(task_id))


def test_kept_while_inbound_is_off_then_opened_in_order_once_enabled(core, client, seeded,
                                                                      carrier, manager):
    provider = seeded["provider"]
    assert provider["inbound_enabled"] is False
    first = open_ticket(client, carrier, externalReference="NOC-1", title="Fan failure",
                        site="S-1", siteName="Leeds Depot")
    second = open_ticket(client, carrier, externalReference="NOC-2", title="Disk full",
                         site="S-1", siteName="Leeds Depot")
    assert first == {"taskId": "0", "externalReference": "NOC-1", "requestType": "New Ticket",
                     "status": "accepted"}
    assert second["taskId"] == "0"
    status = client.get(f"/api/v1/providers/{provider['id']}/inbound", headers=manager).get_json()
    assert status["inbound_queued"] == 2 and status["inbound_enabled"] is False
    assert core.run(queries.list_tasks, None, None, "Fan failure")["total"] == 0

    view = enable(client, manager, provider["id"])
    assert view["inbound_enabled"] is True and view["inbound_group"] == "Desk"
    inbound_queue.drain_job(core)

    tasks = {t["external_reference"]: t for t in
             core.run(queries.list_tasks, None, None, "NOC-")["items"]}
    assert tasks["NOC-1"]["id"] < tasks["NOC-2"]["id"]  # applied in order
    assert tasks["NOC-1"]["group"] == "Desk"
    name = "[Carrier AUTO CREATED] Leeds Depot"
    assert tasks["NOC-1"]["customer"] == tasks["NOC-2"]["customer"] == name
    page = task_of(core, tasks["NOC-1"]["id"])
    assert [(e["request_type"], e["direction"], e["status"]) for e in page["exchanges"]] == [
        ("New Ticket", "In", "delivered")]
    assert any("Opened by Carrier" in n["text"] for n in page["notes"])
    assert page["instances"] == []  # no Submit Request back to the provider
    again = open_ticket(client, carrier, externalReference="NOC-1", title="Fan failure")
    assert again == {"taskId": str(tasks["NOC-1"]["id"]), "externalReference": "NOC-1",
                     "requestType": "New Ticket", "status": "duplicate"}
    status = client.get(f"/api/v1/providers/{provider['id']}/inbound", headers=manager).get_json()
    assert status["inbound_queued"] == 0


def test_linked_site_and_devices_and_no_site(core, client, seeded, carrier, manager):
    provider_id = seeded["provider"]["id"]
    enable(client, manager, provider_id)
    ours = core.run(customers.ensure_own_customer)  # as `liaison init-db` does
    own = open_ticket(client, carrier, externalReference="N-0", title="Our own printer")
    assert task_of(core, own["taskId"])["task"]["customer"] == ours["name"]  # our own business
    first = open_ticket(client, carrier, externalReference="N-1", title="Router", site="S-9",
                        siteName="ACME HQ", device="D-1")
    page = task_of(core, first["taskId"])
    assert "Device: D-1" in page["task"]["description"]  # unknown device: what we know of it
    # link the site to the existing customer ACME and the device to a new asset
    acme = next(c for c in core.run(customers.list_customers) if c["name"] == "ACME")
    response = client.put(f"/api/v1/providers/{provider_id}/sites/S-9/link", headers=manager,
                          json={"customer_id": acme["id"]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["customer"] == {"id": acme["id"], "name": "ACME"}
    asset = core.run(customers.create_asset, acme["id"], "Core router", serial="SN-7")
    response = client.put(f"/api/v1/providers/{provider_id}/devices/D-1/link", headers=manager,
                          json={"asset_id": asset["id"]})
    assert response.status_code == 200, response.get_json()
    second = open_ticket(client, carrier, externalReference="N-2", title="Router again",
                         description="It blinks", site="S-9", device="D-1")
    task = task_of(core, second["taskId"])["task"]
    assert task["customer"] == "ACME"
    assert "It blinks" in task["description"]
    assert f"Asset: Core router, serial SN-7 (asset #{asset['id']})" in task["description"]


def test_bad_input_is_a_client_fault_and_keeps_nothing(core, client, seeded, carrier, manager):
    code, text = fault(call(client, CREATE, {"externalReference": "X-1", "title": "  "}, carrier))
    assert code == "Client" and text.startswith("InvalidInput")
    code, text = fault(call(client, CREATE, {"externalReference": "R" * 101, "title": "t"},
                            carrier))
    assert code == "Client" and "externalReference" in text
    status = client.get(f"/api/v1/providers/{seeded['provider']['id']}/inbound",
                        headers=manager).get_json()
    assert status["inbound_queued"] == 0


def test_wsdl_and_help_page_describe_the_operation(client):
    wsdl = client.get("/Workflow/WebService/WorkflowService.asmx?wsdl").data.decode()
    assert 'name="CreateExternalTicket"' in wsdl and 'name="siteName"' in wsdl
    page = client.get("/Workflow/WebService/WorkflowService.asmx?op=CreateExternalTicket")
    assert page.status_code == 200 and b"externalReference" in page.data


def test_a_provider_opened_ticket_costs_a_bounded_number_of_statements(core, seeded):
    """The hot path of a provider-opened ticket (write-path §8): counted, not timed."""
    from sqlalchemy import event

    from engine.services import inbound_settings, provider_tickets
    from engine.services.provider_tickets import NewTicket

    core.run(inbound_settings.set_inbound, seeded["provider"]["id"],
             {"inbound_group": "Desk", "inbound_enabled": True})
    core.run(provider_tickets.create_external_ticket, "Carrier",
             NewTicket(reference="W-0", title="warm up", site="S-1", site_name="Leeds"))
    statements: list[str] = []
    event.listen(core.db, "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: statements.append(sql))
    result = core.run(provider_tickets.create_external_ticket, "Carrier",
                      NewTicket(reference="W-1", title="Fan", site="S-1", device="D-1"))
    assert result["status"] == "accepted" and int(result["taskId"]) > 0
    writes = [s.split()[0] for s in statements if s.split()[0] in ("INSERT", "UPDATE")]
    assert len(statements) <= 15, "\n".join(s[:70] for s in statements)
    assert writes.count("UPDATE") <= 1  # the site's link to its customer, nothing else
