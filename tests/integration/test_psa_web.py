"""The ConnectWise provider page: connection (key never shown), Test connection, drop-downs
of the provider's real lists, settings, mappings with Not Assigned, broken mappings."""

from __future__ import annotations

import pytest

from engine.services import admin, psa_lookups, psa_settings
from tests.integration.test_web_pages import WebClient, as_user, people, text_of
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator

__all__ = ["people"]

MEMBER = {"company_id": "acme", "public_key": "pub-1", "private_key": "Web-Private-Key-99",
          "client_id": "client-1"}


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


@pytest.fixture
def page(core, client, people, simulator):
    provider = core.run(admin.create_provider, "NOC", "connectwise",
                        connection={"url": simulator.url, **MEMBER})
    web = as_user(WebClient(client), "ivan")
    return web, f"/providers/{provider['id']}", provider["id"]


def test_the_page_never_shows_the_private_key(page):
    web, path, _ = page
    html = text_of(web.get(path))
    assert "Web-Private-Key-99" not in html
    assert 'name="private_key" value=""' in html and "leave empty to keep it" in html


def test_test_connection_says_whether_it_works(page, simulator):
    web, path, _ = page
    answer = web.post(f"{path}/test-connection", page=path)
    assert "Connection works" in text_of(web.get(answer.location))
    web.post(f"{path}/connection", {"private_key": "Wrong-Key-1"}, page=path)
    answer = web.post(f"{path}/test-connection", page=path)
    html = text_of(web.get(answer.location))
    assert "Connection failed" in html and "authentication failed" in html
    assert "Wrong-Key-1" not in html


def test_settings_are_picked_from_the_providers_lists(page, core):
    web, path, provider_id = page
    answer = web.post(f"{path}/settings", {"board": "Managed NOC", "service_type": "Incident",
                                           "priority": "Priority 3 - Normal Response",
                                           "contact": "Dana Noc", "auto_close": "on"}, page=path)
    html = text_of(web.get(answer.location))
    assert "Organisation settings saved." in html
    assert '<option value="Managed NOC" selected>' in html
    assert '<option value="Help Desk">' in html  # a drop-down of the real boards
    assert core.run(psa_settings.get_settings, provider_id)["auto_close"] is True
    refused = web.post(f"{path}/settings", {"board": "Invented"}, page=path)
    assert "ConnectWise has no board named" in text_of(web.get(refused.location))


def test_mappings_with_not_assigned_and_broken_ones(page, core, simulator):
    web, path, provider_id = page
    psa_lookups.refresh(core, provider_id)
    web.post(f"{path}/mappings/priority", {"map:high": "Priority 2 - Quick Response",
                                           "map:low": ""}, page=path)
    assert core.run(psa_settings.get_mapping, provider_id, "priority") == {
        "high": "Priority 2 - Quick Response"}
    web.post(f"{path}/mappings/service", {"new_ours": "router", "new_theirs": "MNOC-ROUTER"},
             page=path)
    # the provider drops the product: the mapping shows as broken
    catalog = simulator.simulator.state.table("catalog")
    del catalog[next(i for i, r in catalog.items() if r["identifier"] == "MNOC-ROUTER")]
    psa_lookups.refresh(core, provider_id)
    html = text_of(web.get(path))
    assert 'class="mapping broken"' in html and "MNOC-ROUTER (no longer at ConnectWise)" in html
    web.post(f"{path}/mappings/service", {"map:router": ""}, page=path)
    assert core.run(psa_settings.get_mapping, provider_id, "service") == {}


def test_agents_may_not_open_it(page, app):
    _, path, _ = page
    web = as_user(WebClient(app.test_client()), "alice")
    assert web.get(path).status_code == 403


def test_a_customer_override_shows_its_effective_value_and_resets(page, core):
    from engine.services import customers
    web, path, provider_id = page
    psa_lookups.refresh(core, provider_id)
    core.run(psa_settings.put_settings, provider_id, {"board": "Managed NOC",
                                                      "priority": "Priority 3 - Normal Response"})
    acme = core.run(customers.create_customer, "ACME Retail")["id"]
    chosen = web.get(f"{path}/customers?customer={acme}")
    customer_path = chosen.location
    html = text_of(web.get(customer_path))
    assert "Organisation default (Priority 3 - Normal Response)" in html
    saved = web.post(customer_path, {"priority": "Priority 1 - Emergency Response",
                                     "disabled": "on"}, page=customer_path)
    html = text_of(web.get(saved.location))
    assert 'id="effective-priority">Priority 1 - Emergency Response' in html
    assert "Disabled: nothing of this customer" in html
    assert "ACME Retail" in text_of(web.get(path))  # listed among the overridden customers
    reset = web.post(f"{customer_path}/reset", page=customer_path)
    html = text_of(web.get(reset.location))
    assert 'id="effective-priority">Priority 3 - Normal Response' in html
    assert "Disabled:" not in html


def test_integration_managers_reach_the_page_from_the_providers_list(page):
    web, path, _ = page
    listing = text_of(web.get("/providers"))
    assert f'href="{path}"' in listing
    assert "Create provider" not in listing and "New password" not in listing  # admin's


def test_the_company_is_chosen_by_its_identifier(page, core):
    web, path, provider_id = page
    web.post(f"{path}/settings", {"board": "Managed NOC", "company": "ACMERetail"}, page=path)
    assert core.run(psa_settings.get_settings, provider_id)["company"] == "ACMERetail"
    html = text_of(web.get(path))
    assert '<option value="ACMERetail" selected>ACME Retail (ACMERetail)</option>' in html
    assert "no longer at ConnectWise" not in html
