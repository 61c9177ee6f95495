"""REST of the two-way link: who may switch inbound on and link, the callback key, 422s naming
the field, the OpenAPI document."""

from __future__ import annotations

import pytest

from engine.services import admin, inbound_settings, provider_tickets
from engine.services.provider_tickets import NewTicket


@pytest.fixture
def tokens(core, seeded):
    made = {}
    for name, role in (("imgr", "integration_manager"), ("agent", "agent"), ("root", "admin")):
        core.run(admin.create_user, name, f"{name}-password", role)
        made[role] = {"Authorization": f"Bearer {core.run(admin.create_token, name)}"}
    return made


@pytest.fixture
def provider_id(seeded):
    return seeded["provider"]["id"]


def test_inbound_is_off_until_an_integration_manager_enables_it(client, tokens, provider_id):
    url = f"/api/v1/providers/{provider_id}"
    shown = client.get("/api/v1/providers", headers=tokens["integration_manager"]).get_json()
    [carrier] = [p for p in shown if p["id"] == provider_id]
    assert carrier["inbound_enabled"] is False and carrier["inbound_group"] is None
    key = carrier["callback_url"].rsplit("/", 1)[1]
    assert carrier["callback_url"].startswith("http://127.0.0.1:8000/api/v1/psa-callbacks/")
    assert len(key) >= 40
    refused = client.patch(url, headers=tokens["agent"], json={"inbound_enabled": True})
    assert refused.status_code == 403
    not_theirs = client.patch(url, headers=tokens["integration_manager"],
                              json={"inbound_enabled": True, "email": "x@y.example"})
    assert not_theirs.status_code == 403
    no_inbox = client.patch(url, headers=tokens["integration_manager"],
                            json={"inbound_enabled": True})
    assert no_inbox.status_code == 422 and no_inbox.get_json()["error"]["field"] == "inbound_group"
    unknown = client.patch(url, headers=tokens["integration_manager"],
                           json={"inbound_group": "Nope"})
    assert unknown.status_code == 422 and unknown.get_json()["error"]["field"] == "inbound_group"
    wrong_type = client.patch(url, headers=tokens["integration_manager"],
                              json={"inbound_enabled": "yes please"})
    assert wrong_type.status_code == 422
    done = client.patch(url, headers=tokens["integration_manager"],
                        json={"inbound_group": "Desk", "inbound_enabled": True})
    assert done.status_code == 200
    assert (done.get_json()["inbound_enabled"], done.get_json()["inbound_group"]) == (True, "Desk")


def test_one_provider_shows_its_callback_url_as_the_list_does(client, tokens, provider_id):
    listed = client.get("/api/v1/providers", headers=tokens["admin"]).get_json()
    [carrier] = [p for p in listed if p["id"] == provider_id]
    one = client.get(f"/api/v1/providers/{provider_id}", headers=tokens["admin"]).get_json()
    assert one["callback_url"] == carrier["callback_url"]
    assert one["callback_url"].startswith("http://127.0.0.1:8000/api/v1/psa-callbacks/")


def test_callback_with_a_wrong_key_is_404_and_queues_nothing(core, client, tokens, provider_id):
    core.run(inbound_settings.set_inbound, provider_id,
             {"inbound_group": "Desk", "inbound_enabled": True})
    forged = {"Action": "added", "Type": "ticket", "ID": 77,
              "Entity": '{"id": 77, "summary": "forged"}'}
    wrong = client.post("/api/v1/psa-callbacks/not-the-key", json=forged)
    assert wrong.status_code == 404 and wrong.get_json()["error"]["code"] == "NotFound"
    assert client.post("/api/v1/psa-callbacks/not-the-key/77", json=forged).status_code == 404
    status = client.get(f"/api/v1/providers/{provider_id}/inbound",
                        headers=tokens["agent"]).get_json()
    assert status["inbound_queued"] == 0
    key = status["callback_url"].rsplit("/", 1)[1]
    hint = client.post(f"/api/v1/psa-callbacks/{key}/77", json=forged)
    assert hint.status_code == 200
    # the body is only a hint: nothing of it becomes data
    again = client.get(f"/api/v1/providers/{provider_id}/inbound/items",
                       headers=tokens["integration_manager"]).get_json()
    assert again == []


def test_linking_needs_the_privilege_and_names_bad_fields(core, client, tokens, provider_id):
    core.run(inbound_settings.set_inbound, provider_id,
             {"inbound_group": "Desk", "inbound_enabled": True})
    core.run(provider_tickets.create_external_ticket, "Carrier",
             NewTicket(reference="A-1", title="t", site="S-1", site_name="Leeds"))
    sites = client.get(f"/api/v1/providers/{provider_id}/sites", headers=tokens["agent"])
    assert sites.status_code == 200
    [site] = sites.get_json()
    assert site["external_id"] == "S-1" and site["customer"]["name"].startswith("[Carrier AUTO")
    base = f"/api/v1/providers/{provider_id}/sites/S-1/link"
    assert client.delete(base, headers=tokens["agent"]).status_code == 403
    assert client.put(base, headers=tokens["agent"], json={"create": True}).status_code == 403
    unlinked = client.delete(base, headers=tokens["integration_manager"])
    assert unlinked.status_code == 200 and unlinked.get_json()["customer"] is None
    [site] = client.get(f"/api/v1/providers/{provider_id}/sites",
                        headers=tokens["agent"]).get_json()
    assert site["suggestions"][0]["name"].startswith("[Carrier AUTO CREATED] Leeds")
    bad = client.put(base, headers=tokens["integration_manager"], json={"customer_id": 999})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "customer_id"
    empty = client.put(base, headers=tokens["integration_manager"], json={})
    assert empty.status_code == 422
    created = client.put(base, headers=tokens["integration_manager"], json={"create": True})
    assert created.status_code == 200 and created.get_json()["customer"]["name"] == "Leeds"
    missing = client.get(f"/api/v1/providers/{provider_id}/devices/NOPE/link",
                         headers=tokens["agent"])
    assert missing.status_code in (404, 405)
    assert client.delete(f"/api/v1/providers/{provider_id}/devices/NOPE/link",
                         headers=tokens["integration_manager"]).status_code == 404


def test_openapi_lists_the_two_way_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/providers/{id}/sites", "/providers/{id}/sites/{external_id}/link",
                 "/providers/{id}/devices/{external_id}/link", "/providers/{id}/errors",
                 "/providers/{id}/refresh", "/psa-callbacks/{key}"):
        assert path in paths
