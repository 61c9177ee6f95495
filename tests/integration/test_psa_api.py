"""REST of ConnectWise providers (CONTRACT §7): connection, test-connection, settings,
mappings, look-ups, errors; roles; bad input answered with 422 naming the field."""

from __future__ import annotations

import pytest

from engine.services import admin, customers
from tests.conftest import free_port
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator

MEMBER = {"company_id": "acme", "public_key": "pub-1", "private_key": "Api-Private-Key-77",
          "client_id": "client-1"}


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


@pytest.fixture
def api(client, admin_token):
    def call(method: str, path: str, body=None, token: str | None = None):
        headers = {"Authorization": f"Bearer {token or admin_token}"}
        response = client.open(f"/api/v1{path}", method=method, json=body, headers=headers)
        return response.status_code, response.get_json()
    return call


@pytest.fixture
def provider(api, simulator):
    status, body = api("POST", "/providers", {"name": "NOC", "channel": "connectwise",
                                              "connection": {"url": simulator.url, **MEMBER}})
    assert status == 201
    return body


def token_for(core, name: str, role: str) -> str:
    core.run(admin.create_user, name, "password-123", role)
    return core.run(admin.create_token, name)


def test_creating_shows_the_connection_without_its_private_key(provider, api):
    assert provider["connection"] == {"url": provider["connection"]["url"], "company_id": "acme",
                                      "public_key": "pub-1", "client_id": "client-1",
                                      "has_private_key": True}
    status, body = api("GET", f"/providers/{provider['id']}")
    assert status == 200 and "Api-Private-Key-77" not in str(body)
    listed = api("GET", "/providers")[1]
    assert "Api-Private-Key-77" not in str(listed)


def test_patch_keeps_connection_fields_left_out(provider, api):
    status, body = api("PATCH", f"/providers/{provider['id']}",
                       {"connection": {"public_key": "pub-2"}})
    assert status == 200
    assert body["connection"]["public_key"] == "pub-2"
    assert body["connection"]["company_id"] == "acme" and body["connection"]["has_private_key"]


@pytest.mark.parametrize(("connection", "field"), [
    ({"url": "ftp://cw.example.com/v4_6_release/apis/3.0"}, "connection.url"),
    ({"url": "https://cw.example.com/v4_6_release/"}, "connection.url"),
    ({"url": "https://cw.example.com/apis/3.0", "company_id": "a", "public_key": "b",
      "client_id": "d"}, "connection.private_key"),
    ({"url": "https://cw.example.com/apis/3.0", "company_id": "a b", "public_key": "b",
      "private_key": "c", "client_id": "d"}, "connection.company_id"),
])
def test_bad_connections_are_422_naming_the_field(api, connection, field):
    status, body = api("POST", "/providers", {"name": "Bad", "channel": "connectwise",
                                              "connection": connection})
    assert status == 422 and body["error"]["field"] == field


def test_test_connection_answers_ok_or_the_reason(provider, api, simulator):
    path = f"/providers/{provider['id']}/test-connection"
    assert api("POST", path) == (200, {"ok": True})
    api("PATCH", f"/providers/{provider['id']}", {"connection": {"private_key": "Nope-1"}})
    status, body = api("POST", path)
    assert status == 200 and body["ok"] is False and "authentication failed" in body["error"]
    assert set(body) == {"ok", "error"}
    dead = f"http://127.0.0.1:{free_port()}/v4_6_release/apis/3.0"
    api("PATCH", f"/providers/{provider['id']}", {"connection": {"url": dead}})
    status, body = api("POST", path)
    assert body["ok"] is False and "unreachable" in body["error"]


def test_settings_are_checked_against_connectwise(provider, api):
    path = f"/providers/{provider['id']}/settings"
    good = {"board": "Managed NOC", "service_type": "Incident",
            "priority": "Priority 3 - Normal Response", "contact": "Dana Noc",
            "auto_close": True}
    status, body = api("PUT", path, good)
    assert status == 200
    assert body == {**good, "closed_status": "Closed", "company": None}
    assert api("GET", path) == (200, body)
    status, body = api("PUT", path, {**good, "board": "No Such Board"})
    assert status == 422 and body["error"]["field"] == "board"
    status, body = api("PUT", path, {**good, "service_type": "Help"})
    assert status == 422 and body["error"]["field"] == "service_type"
    status, body = api("PUT", path, {**good, "auto_close": "yes"})
    assert status == 422 and body["error"]["field"] == "auto_close"


def test_put_settings_sets_the_keys_given_and_keeps_the_others(core, provider, api):
    """As mappings do: a key given replaces, null clears it, a key left out keeps its value;
    per customer `enabled` left out stays as it was."""
    path = f"/providers/{provider['id']}/settings"
    good = {"board": "Managed NOC", "service_type": "Incident",
            "priority": "Priority 3 - Normal Response", "contact": "Dana Noc",
            "auto_close": True}
    api("PUT", path, good)
    status, body = api("PUT", path, {"auto_close": False})
    assert status == 200 and body == {**good, "auto_close": False, "closed_status": "Closed",
                                      "company": None}
    assert api("PUT", path, {"contact": None})[1]["contact"] is None
    assert api("GET", path)[1]["service_type"] == "Incident"

    acme = core.run(customers.create_customer, "ACME")["id"]
    mine = f"/customers/{acme}/providers/{provider['id']}/settings"
    api("PUT", mine, {"priority": "Priority 2 - Quick Response", "enabled": False})
    status, body = api("PUT", mine, {"contact": "Dana Noc"})
    assert status == 200 and body["enabled"] is False
    assert body["overrides"] == {"priority": "Priority 2 - Quick Response",
                                 "contact": "Dana Noc"}
    status, body = api("PUT", mine, {"priority": None, "enabled": True})
    assert (body["overrides"], body["enabled"]) == ({"contact": "Dana Noc"}, True)
    assert body["effective"]["priority"] == "Priority 3 - Normal Response"
    assert api("PUT", mine, {"colour": None})[1]["error"]["field"] == "colour"


def test_mappings_with_not_assigned(provider, api):
    path = f"/providers/{provider['id']}/mappings/priority"
    status, body = api("PUT", path, {"high": "Priority 2 - Quick Response",
                                     "critical": "Priority 1 - Emergency Response"})
    assert status == 200 and body == {"critical": "Priority 1 - Emergency Response",
                                      "high": "Priority 2 - Quick Response"}
    assert api("PUT", path, {"critical": None})[1] == {"high": "Priority 2 - Quick Response"}
    assert api("GET", path) == (200, {"high": "Priority 2 - Quick Response"})
    status, body = api("PUT", path, {"low": "Priority 9"})
    assert status == 422 and body["error"]["field"] == "low"
    status, body = api("PUT", path, {"urgent": "Priority 2 - Quick Response"})
    assert status == 422 and body["error"]["field"] == "urgent"
    service = f"/providers/{provider['id']}/mappings/service"
    assert api("PUT", service, {"router": "MNOC-ROUTER"}) == (200, {"router": "MNOC-ROUTER"})
    assert api("GET", f"/providers/{provider['id']}/mappings/colour")[0] == 422


def test_lookups_list_what_connectwise_has(provider, api):
    api("POST", f"/providers/{provider['id']}/lookups/refresh")
    status, body = api("GET", f"/providers/{provider['id']}/lookups")
    assert status == 200
    assert [b["name"] for b in body["boards"]] == ["Managed NOC", "Help Desk"]
    assert "Closed" in [s["name"] for s in body["statuses"]["Managed NOC"]]
    assert "Dana Noc" in [c["name"] for c in body["contacts"]]


def test_only_admins_and_integration_managers_change_settings(core, provider, api):
    agent = token_for(core, "ann", "agent")
    manager = token_for(core, "max", "integration_manager")
    path = f"/providers/{provider['id']}/settings"
    assert api("PUT", path, {"board": "Managed NOC"}, token=agent)[0] == 403
    assert api("GET", path, token=agent)[0] == 200
    assert api("PUT", path, {"board": "Managed NOC"}, token=manager)[0] == 200
    assert api("POST", f"/providers/{provider['id']}/test-connection", token=agent)[0] == 403


def test_a_provider_of_another_channel_has_no_settings(api):
    _, other = api("POST", "/providers", {"name": "Mailer", "channel": "email",
                                          "email": "noc@example.com"})
    status, body = api("GET", f"/providers/{other['id']}/settings")
    assert status == 409 and "not connectwise" in body["error"]["message"]


def test_openapi_lists_the_connectwise_paths(api):
    _, document = api("GET", "/openapi.json")
    for path in ("/providers/{id}/test-connection", "/providers/{id}/settings",
                 "/providers/{id}/mappings/{kind}", "/providers/{id}/errors"):
        assert path in document["paths"]


def test_a_tls_failure_is_named(provider, api, simulator):
    # https to a server that speaks plain http: the handshake fails
    tls = simulator.url.replace("http://", "https://")
    api("PATCH", f"/providers/{provider['id']}", {"connection": {"url": tls}})
    status, body = api("POST", f"/providers/{provider['id']}/test-connection")
    assert body["ok"] is False and "TLS" in body["error"]
