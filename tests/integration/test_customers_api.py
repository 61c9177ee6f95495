"""REST /api/v1/customers… as a client sees it (CONTRACT §7), on SQLite and PostgreSQL:
shapes, validation, roles, tickets naming customers, merge; the SOAP view keeps the name."""

from __future__ import annotations

import pytest

from app import create_app
from engine.services import admin, customers, tasks
from tests.fixtures.soap.helpers import call, result

ROLES = ("admin", "agent", "integration_manager", "designer")


@pytest.fixture
def api(any_core):
    """call(role, method, path, json) against an app on SQLite or PostgreSQL."""
    client = create_app(core=any_core).test_client()
    tokens = {}
    for role in ROLES:
        any_core.run(admin.create_user, f"{role}-user", "a-long-password", role)
        tokens[role] = any_core.run(admin.create_token, f"{role}-user")

    def call_api(role, method, path, json=None):
        return client.open(f"/api/v1{path}", method=method, json=json,
                           headers={"Authorization": f"Bearer {tokens[role]}"})
    return call_api


def test_customers_and_assets_round_trip(api, any_core):
    own = any_core.run(customers.ensure_own_customer)
    created = api("agent", "POST", "/customers", {"name": "  Initech  "})
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "name": "Initech", "own": False,
                            "notes": "", "asset_count": 0}
    cid = created.json["id"]
    asset = api("agent", "POST", f"/customers/{cid}/assets",
                {"name": "FW-1", "serial": "SN-77", "manufacturer": "Fortinet",
                 "type": "firewall"})
    assert asset.status_code == 201
    assert {k: v for k, v in asset.json.items() if k != "created_at"} == {
        "id": asset.json["id"], "customer_id": cid, "name": "FW-1", "serial": "SN-77",
        "manufacturer": "Fortinet", "type": "firewall", "notes": ""}
    minimal = api("agent", "POST", f"/customers/{cid}/assets", {"name": "Line 2"}).json
    assert (minimal["serial"], minimal["manufacturer"], minimal["type"]) == (None, None, None)

    listed = api("agent", "GET", "/customers").json
    assert [(c["name"], c["own"], c["asset_count"]) for c in listed] == [
        (own["name"], True, 0), ("Initech", False, 2)]
    assert [c["name"] for c in api("agent", "GET", "/customers?q=nite").json] == ["Initech"]
    assert [a["name"] for a in api("agent", "GET", f"/customers/{cid}/assets").json] == [
        "FW-1", "Line 2"]

    patched = api("agent", "PATCH", f"/customers/{cid}", {"notes": "24/7 contract"})
    assert (patched.json["name"], patched.json["notes"]) == ("Initech", "24/7 contract")
    changed = api("agent", "PATCH", f"/customers/{cid}/assets/{asset.json['id']}",
                  {"serial": None, "notes": "rack 4"})
    assert (changed.json["serial"], changed.json["notes"], changed.json["name"]) == \
        (None, "rack 4", "FW-1")
    gone = api("integration_manager", "DELETE", f"/customers/{cid}/assets/{minimal['id']}")
    assert gone.status_code == 204
    assert api("agent", "GET", f"/customers/{cid}").json["asset_count"] == 1


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 201}, "name"),
    ({"name": 7}, "name"), ({"name": "A", "colour": "red"}, "colour"),
])
def test_bad_customer_input_is_a_422_naming_the_field(api, body, field):
    response = api("agent", "POST", "/customers", body)
    assert response.status_code == 422
    assert response.json["error"]["field"] == field


def test_bad_asset_input_and_unknown_rows(api):
    cid = api("agent", "POST", "/customers", {"name": "Initech"}).json["id"]
    for body, field in (({"serial": "1"}, "name"), ({"name": " "}, "name"),
                        ({"name": "A", "type": "t" * 101}, "type")):
        response = api("agent", "POST", f"/customers/{cid}/assets", body)
        assert (response.status_code, response.json["error"]["field"]) == (422, field)
    assert api("agent", "GET", "/customers/999").status_code == 404
    assert api("agent", "POST", "/customers/999/assets", {"name": "A"}).status_code == 404
    assert api("agent", "PATCH", f"/customers/{cid}/assets/999", {"name": "B"}).status_code \
        == 404
    body_not_object = api("agent", "POST", "/customers", ["Initech"])
    assert body_not_object.status_code == 400  # not a JSON object: malformed, not a bad field


def test_names_are_unique_whatever_their_case(api, any_core):
    first = api("agent", "POST", "/customers", {"name": "Initech"}).json
    other = api("agent", "POST", "/customers", {"name": "Globex"}).json
    duplicate = api("agent", "POST", "/customers", {"name": "INITECH "})
    assert duplicate.status_code == 409
    assert duplicate.json["error"]["code"] == "Conflict"
    assert api("agent", "PATCH", f"/customers/{other['id']}", {"name": "initech"}).status_code \
        == 409
    recased = api("agent", "PATCH", f"/customers/{first['id']}", {"name": "INITECH"})
    assert recased.status_code == 200 and recased.json["name"] == "INITECH"
    own = any_core.run(customers.ensure_own_customer)
    renamed_own = api("admin", "PATCH", f"/customers/{own['id']}", {"name": "Something"})
    assert renamed_own.status_code == 409


def test_roles(api, any_core):
    cid = any_core.run(customers.create_customer, "Initech")["id"]
    aid = any_core.run(customers.create_asset, cid, "FW-1")["id"]
    other = any_core.run(customers.create_customer, "Globex")["id"]
    assert api("designer", "GET", "/customers").status_code == 403
    assert api("designer", "POST", "/customers", {"name": "X"}).status_code == 403
    for role in ("agent", "integration_manager", "admin"):
        assert api(role, "GET", f"/customers/{cid}/assets").status_code == 200
        assert api(role, "POST", "/customers", {"name": f"By {role}"}).status_code == 201
    assert api("agent", "DELETE", f"/customers/{cid}/assets/{aid}").status_code == 403
    assert api("agent", "POST", f"/customers/{other}/merge", {"into": cid}).status_code == 403
    merged = api("integration_manager", "POST", f"/customers/{other}/merge", {"into": cid})
    assert merged.status_code == 200 and merged.json["id"] == cid
    assert api("admin", "DELETE", f"/customers/{cid}/assets/{aid}").status_code == 204


def test_merge_over_rest(api, any_core):
    own = any_core.run(customers.ensure_own_customer)
    auto = api("admin", "POST", "/tickets", {"title": "From PSA",
                                            "customer": "[NOC AUTO CREATED] Initech Leeds"}).json
    real = api("admin", "POST", "/customers", {"name": "Initech"}).json
    merged = api("admin", "POST", f"/customers/{auto['customer_id']}/merge", {"into": real["id"]})
    assert merged.status_code == 200 and merged.json["moved"]["tickets"] == 1
    assert api("admin", "GET", f"/tickets/{auto['id']}").json["customer"] == "Initech"
    assert api("admin", "GET", f"/customers/{auto['customer_id']}").status_code == 404
    for body, status, field in (({"into": "x"}, 422, "into"), ({}, 422, "into"),
                                ({"into": 999}, 422, "into")):
        response = api("admin", "POST", f"/customers/{real['id']}/merge", body)
        assert (response.status_code, response.json["error"]["field"]) == (status, field)
    own_away = api("admin", "POST", f"/customers/{own['id']}/merge", {"into": real["id"]})
    assert own_away.status_code == 409


def test_tickets_name_their_customer_and_create_unknown_ones(api, any_core):
    ticket = api("agent", "POST", "/tickets", {"title": "Down", "customer": "Umbrella"})
    assert ticket.status_code == 201 and ticket.json["customer"] == "Umbrella"
    again = api("agent", "POST", "/tickets", {"title": "Down again", "customer": "umbrella"})
    assert again.json["customer"] == "Umbrella"
    own = any_core.run(customers.ensure_own_customer)
    ours = api("agent", "POST", "/tickets", {"title": "Our printer"})
    assert (ours.json["customer"], ours.json["customer_id"]) == (own["name"], own["id"])
    assert [c["name"] for c in api("agent", "GET", "/customers").json] == [own["name"],
                                                                         "Umbrella"]


def test_the_soap_task_shows_the_customer_by_name(core, seeded):
    # seeded: the ticket of customer "ACME" and the integrated group of provider "Carrier"
    client = create_app(core=core).test_client()
    task = core.run(tasks.create_task, seeded["ticket"]["id"], "Router", group="Carrier Group")
    creds = {"username": seeded["provider"]["username"],
             "password": seeded["provider"]["password"]}
    state = result(call(client, "GetProcessInstanceTask", {"taskId": task["id"]}, creds),
                   "GetProcessInstanceTask")
    assert state["customer"] == "ACME"


def test_the_openapi_document_lists_the_customer_endpoints(api):
    document = api("agent", "GET", "/openapi.json").json
    assert {"get", "post"} <= set(document["paths"]["/customers"])
    assert {"patch", "delete"} <= set(document["paths"]["/customers/{id}/assets/{asset_id}"])
    assert "post" in document["paths"]["/customers/{id}/merge"]
    assert "CustomerOut" in document["components"]["schemas"]


@pytest.mark.parametrize("attempt", range(3))
def test_racing_creates_of_one_new_name_answer_cleanly(any_core, attempt):
    """Several clients create the same new customer at once, directly or by naming it on a
    ticket: one customer, one 201 and 409s (never a 500); every ticket names that customer."""
    import threading

    any_core.run(admin.create_user, "racer", "a-long-password", "agent")
    token = any_core.run(admin.create_token, "racer")
    app = create_app(core=any_core)
    barrier, answers = threading.Barrier(8), []

    def post(path, body):
        client = app.test_client()
        barrier.wait()
        answer = client.post(f"/api/v1{path}", json=body,
                             headers={"Authorization": f"Bearer {token}"})
        answers.append((path, answer.status_code, answer.json))

    threads = [threading.Thread(target=post, args=("/customers", {"name": name}))
               for name in ("Umbrella", "UMBRELLA", "umbrella", "Umbrella")]
    threads += [threading.Thread(target=post, args=("/tickets", {
        "title": "Alarm", "description": "d", "customer": "Umbrella"})) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [status for path, status, _ in answers if path == "/customers"]
    assert sorted(made) in ([201, 409, 409, 409], [409, 409, 409, 409]), answers
    tickets = [(status, body["customer"].lower()) for path, status, body in answers
               if path == "/tickets"]
    assert tickets == [(201, "umbrella")] * 4
    names = [c["name"].lower() for c in any_core.run(customers.list_customers)]
    assert names.count("umbrella") == 1
