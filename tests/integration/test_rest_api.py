"""REST API /api/v1 as a client sees it (CONTRACT §3)."""

from __future__ import annotations

import io

import pytest

from engine.services import admin

BPMN_NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
           'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


def bpmn(process_id="hello", name="Hello", extra=""):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {BPMN_NS} id="d" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{process_id}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end"/>{extra}
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
""".encode()


@pytest.fixture
def auth(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


def upload(client, auth, data, name="p.bpmn"):
    return client.post("/api/v1/process-models", headers=auth,
                       data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_health_needs_no_auth_and_everything_else_does(client):
    assert client.get("/api/v1/health").json == {"status": "ok"}
    response = client.get("/api/v1/process-models")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "NotAuthenticated"
    bad = client.get("/api/v1/tasks/1", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_walkthrough_provider_group_ticket_task_exchanges_instances(client, auth):
    provider = client.post("/api/v1/providers", headers=auth, json={
        "name": "Acme NOC", "channel": "email", "email": "noc@acme.example"})
    assert provider.status_code == 201
    assert set(provider.json) >= {"id", "name", "username", "password"}
    listed = client.get("/api/v1/providers", headers=auth).json
    assert "password" not in listed[0]

    group = client.post("/api/v1/groups", headers=auth, json={
        "name": "Acme", "integrated": True, "provider": "Acme NOC"})
    assert group.status_code == 201
    assert group.json["processes"]["new_assignment"] == "liaison_new_assignment"

    ticket = client.post("/api/v1/tickets", headers=auth, json={"title": "Printer on fire"})
    assert ticket.status_code == 201
    task = client.post(f"/api/v1/tickets/{ticket.json['id']}/tasks", headers=auth,
                       json={"title": "Send a technician", "description": "3rd floor",
                             "group": "Acme"})
    assert task.status_code == 201
    assert task.json["status"] == "open" and task.json["group"] == "Acme"

    task_id = task.json["id"]
    got = client.get(f"/api/v1/tasks/{task_id}", headers=auth).json
    assert {"id", "ticket_id", "title", "group", "status", "external_reference",
            "solution"} <= set(got)
    [exchange] = client.get(f"/api/v1/tasks/{task_id}/exchanges", headers=auth).json
    assert {k: exchange[k] for k in ("request_type", "direction", "channel", "status")} == {
        "request_type": "Submit Request", "direction": "Out", "channel": "email",
        "status": "pending"}
    assert {"id", "attempts", "at"} <= set(exchange)
    [instance] = client.get(f"/api/v1/process-instances?task_id={task_id}", headers=auth).json
    assert instance["status"] == "waiting" and instance["event"] == "new_assignment"

    updated = client.post(f"/api/v1/tasks/{task_id}/updates", headers=auth, json={"text": "ETA?"})
    assert updated.status_code == 200
    closed = client.post(f"/api/v1/tasks/{task_id}/close", headers=auth, json={"solution": "ok"})
    assert closed.json["status"] == "closed"
    again = client.post(f"/api/v1/tasks/{task_id}/assign", headers=auth, json={"group": "Acme"})
    assert again.status_code == 409 and again.json["error"]["code"] == "TaskClosed"


@pytest.mark.parametrize(("path", "payload", "field"), [
    ("/api/v1/tickets", {}, "title"),
    ("/api/v1/tickets", {"title": "x", "colour": "red"}, "colour"),
    ("/api/v1/providers", {"name": "P", "channel": "fax"}, "channel"),
    ("/api/v1/providers", {"name": "P", "channel": "soap", "endpoint_url": "ftp://x"},
     "endpoint_url"),
    ("/api/v1/groups", {"name": "G", "integrated": True}, "provider"),
    ("/api/v1/groups", {"name": "G", "processes": {"bogus": "x"}}, "processes"),
])
def test_wrong_shapes_are_422_naming_the_field(client, auth, path, payload, field):
    response = client.post(path, headers=auth, json=payload)
    assert response.status_code == 422
    assert response.json["error"]["field"] == field
    assert field in response.json["error"]["message"]


def test_unknown_ids_are_404(client, auth):
    assert client.get("/api/v1/tasks/999", headers=auth).status_code == 404
    assert client.post("/api/v1/tickets/999/tasks", headers=auth,
                       json={"title": "x"}).status_code == 404
    assert client.get("/api/v1/no-such-thing", headers=auth).json["error"]["code"] == "NotFound"


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/customers", "/api/v1/mail-rules",
                                  "/api/v1/providers/1/mappings/priority",
                                  "/api/v1/providers/1/sites/S-1/link"])
@pytest.mark.parametrize("data", ["{", "[1, 2]", '"text"', ""])
def test_a_body_that_is_not_a_json_object_is_400(client, auth, path, data):
    method = client.put if "/providers/" in path else client.post
    response = method(path, headers=auth, data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == {"code": "BadRequest", "field": "body",
                                      "message": "the body must be a JSON object"}


def test_a_json_body_sent_without_its_content_type_is_read(client, auth):
    """`curl -d '{…}'` sends application/x-www-form-urlencoded."""
    response = client.post("/api/v1/tickets", headers=auth, data='{"title": "From curl"}',
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201 and response.json["title"] == "From curl"
    keyed = {**auth, "Idempotency-Key": "curl-1"}
    for _ in range(2):
        again = client.post("/api/v1/tickets", headers=keyed, data='{"title": "Keyed"}',
                            content_type="application/x-www-form-urlencoded")
        assert again.status_code == 201 and again.json["title"] == "Keyed"
    assert again.headers["Idempotent-Replayed"] == "true"


def test_upload_versions_and_lists_models(client, auth):
    first = upload(client, auth, bpmn())
    assert first.status_code == 201
    assert first.json == {**first.json, "process_id": "hello", "version": 1, "name": "Hello"}
    second = upload(client, auth, bpmn(name="Hello again"))
    assert second.status_code == 201 and second.json["version"] == 2
    same_again = upload(client, auth, bpmn(name="Hello again"))  # a re-upload is a version too
    assert same_again.status_code == 201 and same_again.json["version"] == 3
    versions = [m["version"] for m in client.get("/api/v1/process-models", headers=auth).json
                if m["process_id"] == "hello"]
    assert versions == [3, 2, 1]


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&x;'
    b'</bpmn:definitions>',
    b"not xml at all",
    bpmn(extra='\n    <bpmn:scriptTask id="s"><bpmn:script>__import__("os")</bpmn:script>'
               '</bpmn:scriptTask>').replace(b'targetRef="end"', b'targetRef="s"'),
])
def test_hostile_or_invalid_bpmn_is_422_with_lines_and_stores_nothing(client, auth, data):
    before = client.get("/api/v1/process-models", headers=auth).json
    response = upload(client, auth, data)
    assert response.status_code == 422
    assert response.json["errors"] and "message" in response.json["errors"][0]
    assert "line" in response.json["errors"][0]
    assert b"root:" not in response.data  # no entity content leaks back
    assert client.get("/api/v1/process-models", headers=auth).json == before


def test_a_bpmn_file_over_the_limit_is_413_and_stores_nothing(client, auth):
    before = client.get("/api/v1/process-models", headers=auth).json
    response = upload(client, auth, b"<a>" + b"x" * (10 * 1024 * 1024) + b"</a>")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "PayloadTooLarge"
    assert client.get("/api/v1/process-models", headers=auth).json == before


def test_syntax_error_reports_its_line(client, auth):
    broken = bpmn().replace(b"</bpmn:process>", b"</bpmn:proces>")
    response = upload(client, auth, broken)
    assert response.status_code == 422
    assert response.json["errors"][0]["line"] == 7  # the mismatched closing tag


def test_agent_role_cannot_create_providers(client, core):
    core.run(admin.create_user, "ann", "ann-password", "agent")
    token = core.run(admin.create_token, "ann")
    response = client.post("/api/v1/providers", headers={"Authorization": f"Bearer {token}"},
                           json={"name": "P", "channel": "email", "email": "a@b.example"})
    assert response.status_code == 403


def test_openapi_document_lists_the_contract_paths(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    for path in ("/tickets", "/tickets/{id}/tasks", "/tasks/{id}", "/tasks/{id}/assign",
                 "/tasks/{id}/exchanges", "/process-models", "/process-instances"):
        assert path in document["paths"]
    assert "TaskIn" in document["components"]["schemas"]


def test_a_provider_without_address_fails_visibly_and_is_replayed_once_it_has_one(client, auth):
    created = client.post("/api/v1/providers", headers=auth, json={"name": "Late", "channel": "email"})
    assert created.status_code == 201  # the address may come later (CONTRACT: email optional)
    client.post("/api/v1/groups", headers=auth, json={"name": "Late G", "integrated": True,
                                                     "provider": "Late"})
    ticket = client.post("/api/v1/tickets", headers=auth, json={"title": "t"}).json
    task = client.post(f"/api/v1/tickets/{ticket['id']}/tasks", headers=auth,
                       json={"title": "Swap disk", "group": "Late G"}).json
    [exchange] = client.get(f"/api/v1/tasks/{task['id']}/exchanges", headers=auth).json
    assert exchange["status"] == "failed" and "e-mail address" in exchange["error"]
    [instance] = client.get(f"/api/v1/process-instances?task_id={task['id']}", headers=auth).json
    assert instance["status"] == "waiting"  # the process goes on waiting for the answer

    refused = client.post(f"/api/v1/exchanges/{exchange['id']}/replay", headers=auth)
    assert refused.status_code == 409 and "e-mail address" in refused.json["error"]["message"]
    fixed = client.patch(f"/api/v1/providers/{created.json['id']}", headers=auth,
                         json={"email": "desk@late.example"})
    assert fixed.status_code == 200 and fixed.json["email"] == "desk@late.example"
    replayed = client.post(f"/api/v1/exchanges/{exchange['id']}/replay", headers=auth)
    assert replayed.status_code == 200 and replayed.json["status"] == "pending"
    payload = client.get(f"/api/v1/exchanges/{exchange['id']}", headers=auth).json["payload"]
    assert payload["to"] == "desk@late.example" and "Swap disk" in payload["subject"]
