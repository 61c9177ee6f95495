"""Designer, admin and integration-manager pages, and user-task forms (Flask test client)."""

from __future__ import annotations

import io
import json
import re

import pytest
from lxml import etree

from engine.exceptions import DeliveryError
from engine.services import admin, models, outbox, queries, tasks
from engine.services.accounts import set_group_members
from engine.services.models import BUNDLED_DIR
from forms import web_designer
from tests.integration.test_web_pages import WebClient, as_user, new_task, people, text_of

__all__ = ["people"]  # the fixture, shared with test_web_pages

BUNDLED = (BUNDLED_DIR / "liaison_new_assignment.bpmn").read_bytes()
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


@pytest.fixture
def web(client):
    return WebClient(client)


def upload(web: WebClient, data: bytes, name: str = "process.bpmn", forms=()):
    files = {"file": (io.BytesIO(data), name),
             "forms": [(io.BytesIO(text.encode()), fname) for fname, text in forms]}
    return web.post("/process-models", files, page="/process-models",
                    content_type="multipart/form-data")


def broken(data: bytes) -> tuple[bytes, int]:
    """The bundled process with a closing tag misspelt; returns it and the line of the error."""
    bad = data.replace(b"</bpmn:serviceTask>", b"</bpmn:serviceTsak>", 1)
    try:
        etree.fromstring(bad)
    except etree.XMLSyntaxError as exc:
        return bad, exc.lineno
    raise AssertionError("the file should not parse")


# -- designer ------------------------------------------------------------------------------

def test_designer_sees_the_line_of_an_error_then_deploys_version_2(web, people):
    as_user(web, "dora")
    bad, line = broken(BUNDLED)
    refused = upload(web, bad, "liaison_new_assignment.bpmn")
    assert refused.status_code == 422
    assert f"Line {line}:" in text_of(refused)

    fixed = BUNDLED.replace(b'name="Liaison: new assignment"', b'name="New assignment v2"')
    deployed = upload(web, fixed, "liaison_new_assignment.bpmn")
    assert deployed.status_code == 302
    page = text_of(web.get(deployed.location))
    assert "version 2" in page and "New assignment v2" in page
    assert 'id="diagram"' in page and "bpmn-navigated-viewer" in page
    model_id = re.search(r"/process-models/(\d+)$", deployed.location).group(1)
    xml = web.get(f"/process-models/{model_id}/bpmn")
    assert xml.data == fixed and "attachment" in xml.headers["Content-Disposition"]


def test_diagram_page_says_so_when_bpmn_js_is_not_installed(web, people, monkeypatch, tmp_path):
    monkeypatch.setattr(web_designer, "VIEWER", tmp_path / "nothing-here")
    as_user(web, "dora")
    model_id = web.client.application.extensions["liaison"].run(queries.list_models)[0]["id"]
    page = text_of(web.get(f"/process-models/{model_id}"))
    assert "The diagram viewer (bpmn-js) is not installed" in page
    assert "bpmn-navigated-viewer" not in page


def test_variables_panel_lists_what_each_event_hands_a_process(web, people):
    as_user(web, "dora")
    page = text_of(web.get("/process-models"))
    for name in ("task.external_reference", "event.request_type", "provider.channel",
                 "ExternalAcknowledgement", "external_reassignment"):
        assert name in page


def test_a_form_that_is_not_json_is_refused(web, people):
    as_user(web, "dora")
    response = upload(web, BUNDLED, "liaison_new_assignment.bpmn",
                      forms=[("liaison_new_assignment-x.json", "{not json")])
    assert response.status_code == 422 and "not valid JSON" in text_of(response)


def test_only_designers_upload(web, people):
    as_user(web, "alice")
    assert upload(web, BUNDLED).status_code == 403
    assert web.get("/process-models").status_code == 200  # but agents may look


# -- user-task forms -----------------------------------------------------------------------

APPROVAL = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="{SPIFF}" id="approval_defs" targetNamespace="urn:test">
  <bpmn:process id="approval" name="Approval" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="approve" name="Approve the hand-over">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="handover-form.json"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
""".encode()
APPROVAL_FORM = {"title": "Hand-over check", "required": ["decision", "minutes"],
                 "properties": {
                     "decision": {"type": "string", "title": "Decision",
                                  "enum": ["approve", "reject"]},
                     "minutes": {"type": "integer", "title": "Minutes spent", "minimum": 0},
                     "urgent": {"type": "boolean", "title": "Urgent"},
                     "remark": {"type": "string", "title": "Remark", "maxLength": 50}}}


def test_user_task_form_is_rendered_validated_and_completes_the_task(core, web, people):
    core.run(models.deploy_process_model, APPROVAL, "approval.bpmn", "test",
             {"handover-form.json": json.dumps(APPROVAL_FORM)})
    core.run(admin.create_group, "Approvers", integrated=True, provider="Carrier",
             processes={"new_assignment": "approval", "update_message": "liaison_update_message",
                        "closure": "liaison_closure"})
    core.run(set_group_members, "Approvers", ["alice"])
    task_id = new_task(core, people["ticket"]["id"], "Needs approval", "Approvers")
    as_user(web, "alice")
    page = f"/tasks/{task_id}"
    html = text_of(web.get(page))
    assert "Hand-over check" in html and "Minutes spent" in html
    action = re.search(r'action="(/process-instances/\d+/user-tasks/approve)"', html).group(1)

    refused = web.post(action, {"decision": "maybe", "minutes": "-3"}, page=page,
                       follow_redirects=True)
    assert "decision: Must be one of: approve, reject." in text_of(refused)
    assert "Hand-over check" in text_of(refused)  # still open

    done = web.post(action, {"decision": "approve", "minutes": "12", "urgent": "on"},
                    page=page, follow_redirects=True)
    assert "Approve the hand-over: done." in text_of(done)
    assert "Hand-over check" not in text_of(done)


# -- admin ---------------------------------------------------------------------------------

def test_admin_creates_a_provider_and_sees_its_password_once(web, people):
    as_user(web, "boss")
    created = web.post("/providers", {"name": "Fibre Co", "channel": "soap",
                                      "endpoint_url": "http://127.0.0.1:9/ws",
                                      "label_task_id": "Ticket-Id"})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="provider-password">([^<]+)<', text_of(created)).group(1)
    listing = text_of(web.get("/providers"))
    assert "Fibre Co" in listing and "Ticket-Id" in listing and password not in listing
    again = text_of(web.post("/providers/Fibre Co/password", page="/providers"))
    new_password = re.search(r'id="provider-password">([^<]+)<', again).group(1)
    assert new_password != password


def test_provider_form_errors_come_back_as_messages(web, people):
    as_user(web, "boss")
    response = web.post("/providers", {"name": "Mail Co", "channel": "email",
                                       "email": "not an address"}, follow_redirects=True)
    assert "Mail Co" not in text_of(web.get("/providers"))
    assert "Not a valid email address." in text_of(response)


def test_admin_creates_an_integrated_group_and_sets_its_members(web, people):
    as_user(web, "boss")
    created = web.post("/groups", {"name": "Fibre", "integrated": "on", "provider": "Carrier"})
    assert created.status_code == 302
    page = text_of(web.get("/groups/Fibre"))
    assert 'value="liaison_new_assignment" selected' in page
    web.post("/groups/Fibre/members", {"members": ["alice", "ivan"]}, page="/groups/Fibre")
    page = text_of(web.get("/groups/Fibre"))
    assert 'value="alice" checked' in page and 'value="ivan" checked' in page
    web.post("/groups/Fibre", {"provider": ""}, page="/groups/Fibre")  # no longer integrated
    assert "<td>no</td>" in text_of(web.get("/groups"))


def test_admin_creates_users(web, people):
    as_user(web, "boss")
    web.post("/users", {"name": "erin", "role": "designer", "password": "erin-password"})
    assert "erin" in text_of(web.get("/users"))
    short = web.post("/users", {"name": "finn", "role": "agent", "password": "short"},
                     page="/users", follow_redirects=True)
    assert "password: must have at least 8 characters" in text_of(short)


# -- integration manager -------------------------------------------------------------------

def fail_delivery(core) -> None:
    for item in core.run(outbox.claim_due, "test-worker"):
        core.run(outbox.record_outcome, item["id"], "test-worker", None,
                 DeliveryError("relay refused the connection", retryable=False))


def test_failed_exchanges_are_incidents_with_error_and_replay(core, web, people):
    new_task(core, people["ticket"]["id"], "Router dead", "Carrier Group")
    fail_delivery(core)
    as_user(web, "ivan")
    page = text_of(web.get("/exchanges"))
    incident = re.search(r'id="incident-(\d+)"', page)
    assert incident and "relay refused the connection" in page
    exchange_id = incident.group(1)
    web.post(f"/exchanges/{exchange_id}/replay", page="/exchanges")
    page = text_of(web.get("/exchanges"))
    assert "No failed exchanges." in page
    assert "pending" in text_of(web.get(f"/exchanges/{exchange_id}"))


def test_exchanges_filter_by_direction_status_provider_and_time(core, web, people):
    task_id = new_task(core, people["ticket"]["id"], "Router dead", "Carrier Group")
    core.run(tasks.add_update, task_id, "any news?")
    as_user(web, "ivan")
    rows = re.compile(r'class="request-type">([^<]+)<')
    assert rows.findall(text_of(web.get("/exchanges?direction=Out"))) == ["Update",
                                                                           "Submit Request"]
    assert rows.findall(text_of(web.get("/exchanges?request_type=Update"))) == ["Update"]
    assert rows.findall(text_of(web.get("/exchanges?direction=In"))) == []
    assert rows.findall(text_of(web.get("/exchanges?provider=Carrier&status=pending")))
    assert rows.findall(text_of(web.get("/exchanges?since=2999-01-01T00:00"))) == []
    assert web.get("/exchanges?since=yesterday").status_code == 422


def test_agent_reads_exchanges_of_own_tasks_only(core, web, people):
    task_id = new_task(core, people["ticket"]["id"], "Router dead", "Carrier Group")
    exchange_id = core.run(queries.exchanges_of_task, task_id)[0]["id"]
    core.run(admin.create_user, "bob", "bob-password", "agent")  # in no group
    web.login("bob", "bob-password")
    assert web.get(f"/exchanges/{exchange_id}").status_code == 404
    web.post("/logout", page="/tasks")
    as_user(web, "alice")
    assert "Submit Request" in text_of(web.get(f"/exchanges/{exchange_id}"))
