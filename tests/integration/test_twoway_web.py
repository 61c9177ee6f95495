"""The link manager page and the task page's *Update ticket in <provider>*, as signed-in people
use them (Flask test client): controls for integration managers, read-only for agents."""

from __future__ import annotations

from engine.services import customers, inbound_settings, links, provider_tickets, queries
from engine.services.provider_tickets import NewTicket
from tests.integration.test_web_pages import as_user, people, text_of, web  # noqa: F401


def opened(core, provider="Carrier", reference="W-1", site="S-1", site_name="Leeds Depot",
           device=None) -> int:
    ticket = NewTicket(reference=reference, title="Printer jam", site=site, site_name=site_name,
                       device=device, device_details={"name": "HP 4200", "serial": "CN-42"})
    return int(core.run(provider_tickets.create_external_ticket, provider, ticket)["taskId"])


def enable(core, provider_id: int) -> None:
    core.run(inbound_settings.set_inbound, provider_id,
             {"inbound_group": "Desk", "inbound_enabled": True})


def test_integration_manager_links_creates_and_unlinks(web, people, core):  # noqa: F811
    provider_id = people["provider"]["id"]
    enable(core, provider_id)
    opened(core, device="D-1")
    page = f"/providers/{provider_id}/links"
    as_user(web, "ivan")
    shown = text_of(web.get(page))
    assert "Leeds Depot" in shown and "Unlink" in shown  # linked to its AUTO CREATED customer
    assert "HP 4200" in shown and "Create asset" in shown

    acme = next(c["id"] for c in core.run(customers.list_customers) if c["name"] == "ACME")
    unlinked = web.post(f"/providers/{provider_id}/sites/S-1/unlink", page=page)
    assert unlinked.status_code == 302
    assert core.run(links.list_sites, provider_id)[0]["customer"] is None
    web.post(f"/providers/{provider_id}/sites/S-1/link", {"customer_id": str(acme)}, page=page)
    assert core.run(links.list_sites, provider_id)[0]["customer"]["name"] == "ACME"
    web.post(f"/providers/{provider_id}/devices/D-1/link", {"create": "1"}, page=page)
    [asset] = core.run(customers.list_assets, acme)
    assert (asset["name"], asset["serial"]) == ("HP 4200", "CN-42")
    assert "HP 4200" in text_of(web.get(f"/customers/{acme}"))


def test_agent_sees_the_links_without_controls_and_may_not_post(web, people, core):  # noqa: F811
    provider_id = people["provider"]["id"]
    enable(core, provider_id)
    opened(core)
    as_user(web, "alice")
    page = f"/providers/{provider_id}/links"
    shown = text_of(web.get(page))
    assert "Leeds Depot" in shown and "Read-only" in shown
    assert "Unlink" not in shown and "Create customer" not in shown and "Callback URL" not in shown
    refused = web.post(f"/providers/{provider_id}/sites/S-1/unlink", page=page)
    assert refused.status_code == 403
    assert core.run(links.list_sites, provider_id)[0]["customer"] is not None
    assert "Provider links" in text_of(web.get("/provider-links"))


def test_update_ticket_in_provider_from_the_task_page(web, people, core, mailer):  # noqa: F811
    enable(core, people["provider"]["id"])
    task_id = opened(core)
    as_user(web, "alice")
    page = f"/tasks/{task_id}"
    assert "Update ticket in Carrier" in text_of(web.get(page))
    sent = web.post(f"/tasks/{task_id}/provider-ticket",
                    {"provider": "Carrier", "note": "Toner ordered"}, page=page)
    assert sent.status_code == 302
    kinds = [(e["request_type"], e["direction"]) for e in
             core.run(queries.exchanges_of_task, task_id)]
    assert kinds == [("New Ticket", "In"), ("Update", "Out")]


def test_closing_a_provider_opened_task_closes_it_at_the_provider(web, people, core, mailer):  # noqa: F811
    enable(core, people["provider"]["id"])
    task_id = opened(core)
    from engine.services import tasks
    core.run(tasks.close_task, task_id, "Toner replaced", actor="alice")
    kinds = [(e["request_type"], e["direction"]) for e in
             core.run(queries.exchanges_of_task, task_id)]
    assert kinds == [("New Ticket", "In"), ("Closed", "Out")]  # through its channel (e-mail)
