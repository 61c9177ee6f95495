"""The WorkflowService through the whole app (Flask test client): calls in SOAP 1.1 and 1.2,
WS-Security, isolation, idempotency, faults, hostile input, WSDL and help pages."""

from __future__ import annotations

import base64
import html
import logging
import os
import re
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import text

from app import create_app
from engine.services import admin, queries, tasks
from tests.fixtures.soap.helpers import (
    CONTENT_TYPES,
    NS,
    PATH,
    call,
    envelope,
    fault,
    now_text,
    result,
    security_header,
)

HOSTILE = Path(__file__).parents[1] / "fixtures" / "soap" / "hostile"
ACK = "ProcessInstanceTaskExternalAcknowledgement"
UPDATE = "ProcessInstanceTaskExternalUpdateMessage"
REASSIGN = "ProcessInstanceTaskExternalReassignment"
GET = "GetProcessInstanceTask"


def creds_of(provider: dict) -> dict:
    return {"username": provider["username"], "password": provider["password"]}


def new_task(core, seeded, group="Carrier Group", title="Replace the router") -> dict:
    return core.run(tasks.create_task, seeded["ticket"]["id"], title, "Router dead", group=group)


def exchanges(core, task_id) -> list[tuple[str, str]]:
    return [(e["request_type"], e["direction"]) for e in core.run(queries.exchanges_of_task,
                                                                  task_id)]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def carrier(seeded):
    return creds_of(seeded["provider"])


@pytest.fixture
def vendor(core):
    provider = core.run(admin.create_provider, "Vendor", "email", email="desk@vendor.example")
    core.run(admin.create_group, "Vendor Group", integrated=True, provider="Vendor")
    return creds_of(provider)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("digest", [False, True], ids=["text", "digest"])
def test_acknowledgement_in_each_soap_version_and_password_kind(core, seeded, client, carrier,
                                                               version, digest):
    task = new_task(core, seeded)
    response = call(client, ACK, {"taskId": task["id"], "externalReference": "CAR-77"}, carrier,
                    version=version, digest=digest)

    assert response.headers["Content-Type"].startswith(CONTENT_TYPES[version].split(";")[0])
    assert result(response, ACK) == {"taskId": str(task["id"]), "externalReference": "CAR-77",
                                     "requestType": "Acknowledgement", "status": "accepted"}
    assert core.run(tasks.get_task, task["id"])["external_reference"] == "CAR-77"
    assert ("Acknowledgement", "In") in exchanges(core, task["id"])
    [instance] = core.run(queries.instances_of_task, task["id"])
    assert "ExternalAcknowledgement" not in instance["waiting_for"]


def test_update_reassignment_and_task_state(core, seeded, client, carrier):
    task = new_task(core, seeded)
    call(client, ACK, {"taskId": task["id"], "externalReference": "CAR-1"}, carrier)
    updated = call(client, UPDATE, {"taskId": task["id"], "message": "Engineer on site"}, carrier)
    assert result(updated, UPDATE)["requestType"] == "Update"
    back = call(client, REASSIGN, {"taskId": task["id"], "solution": "Replaced the SFP",
                                   "externalReference": "CAR-1"}, carrier, digest=True)
    assert result(back, REASSIGN)["requestType"] == "Reassigned"

    state = result(call(client, GET, {"taskId": task["id"]}, carrier), GET)
    assert state["taskId"] == str(task["id"]) and state["status"] == "open"
    assert state["externalReference"] == "CAR-1" and state["solution"] == "Replaced the SFP"
    assert state["group"] == "Carrier Group" and state["solutionPending"] == "true"
    assert exchanges(core, task["id"])[1:] == [("Acknowledgement", "In"), ("Update", "In"),
                                               ("Reassigned", "In")]


def test_a_replayed_nonce_is_refused_even_after_a_restart(core, seeded, client, carrier):
    task = new_task(core, seeded)
    header = security_header(carrier["username"], carrier["password"], digest=True)
    body = envelope(GET, {"taskId": task["id"]}, header)
    assert client.post(PATH, data=body, content_type="text/xml").status_code == 200

    again = client.post(PATH, data=body, content_type="text/xml")
    assert fault(again) == ("Client", "NotAuthorized: the WS-Security nonce was used before")
    restarted = create_app(core=core).test_client()  # a new process would see the same table
    assert fault(restarted.post(PATH, data=body, content_type="text/xml"))[1] == \
        "NotAuthorized: the WS-Security nonce was used before"


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_stale_created_is_refused(core, seeded, client, carrier, minutes):
    from datetime import timedelta

    created = now_text(core.clock.now() + timedelta(minutes=minutes))
    response = call(client, GET, {"taskId": new_task(core, seeded)["id"]}, carrier, digest=True,
                    created=created)
    assert fault(response) == ("Client", "NotAuthorized: WS-Security Created is not within 5 "
                                         "minutes of the server's clock")


def test_bad_credentials_are_refused_alike_and_logged_without_the_password(
        core, seeded, client, carrier, caplog):
    task_id = new_task(core, seeded)["id"]
    caplog.set_level(logging.INFO)
    wrong = call(client, GET, {"taskId": task_id}, {**carrier, "password": "Guess-4711"})
    unknown = call(client, GET, {"taskId": task_id}, {"username": "nobody", "password": "x"},
                   digest=True)
    missing = client.post(PATH, data=envelope(GET, {"taskId": task_id}), content_type="text/xml")

    assert fault(wrong) == fault(unknown) == ("Client",
                                              "NotAuthorized: invalid username or password")
    assert fault(missing) == ("Client",
                              "NotAuthorized: a WS-Security UsernameToken header is required")
    assert carrier["username"] in caplog.text and "nobody" in caplog.text
    assert "Guess-4711" not in caplog.text and carrier["password"] not in caplog.text


def test_failed_logins_are_slowed_down_per_provider(core, seeded, client, carrier, vendor):
    task_id = new_task(core, seeded)["id"]
    for _ in range(4):
        call(client, GET, {"taskId": task_id}, {**carrier, "password": "wrong"})

    paused = call(client, GET, {"taskId": task_id}, carrier)  # even the right password waits
    assert fault(paused)[1].startswith("NotAuthorized: too many failed logins; try again in")
    other = call(client, GET, {"taskId": task_id}, vendor)  # another provider is not paused
    assert fault(other)[1].startswith("NotAuthorized: task")


@pytest.mark.parametrize("operation, fields", [
    (ACK, {"externalReference": "VEN-1"}), (UPDATE, {"message": "hello"}),
    (REASSIGN, {"solution": "mine now"}), (GET, {})])
def test_a_provider_acts_only_on_tasks_of_its_own_groups(core, seeded, client, vendor,
                                                        operation, fields):
    task = new_task(core, seeded)
    response = call(client, operation, {"taskId": task["id"], **fields}, vendor)

    assert fault(response) == ("Client", f"NotAuthorized: task {task['id']} is not held by a "
                                          "group of provider Vendor")
    assert core.run(tasks.get_task, task["id"])["external_reference"] is None
    assert exchanges(core, task["id"]) == [("Submit Request", "Out")]


def test_a_repeated_request_id_returns_the_first_result_and_changes_nothing(core, seeded, client,
                                                                           carrier):
    task = new_task(core, seeded)
    fields = {"taskId": task["id"], "message": "Parts ordered", "requestId": "upd-1"}
    first = result(call(client, UPDATE, fields, carrier), UPDATE)
    second = result(call(client, UPDATE, {**fields, "message": "changed text"}, carrier), UPDATE)

    assert first["status"] == "accepted" and second == {**first, "status": "duplicate"}
    assert exchanges(core, task["id"]).count(("Update", "In")) == 1
    notes = core.run(queries.task_page, task["id"])["notes"]
    assert [n["text"] for n in notes if n["kind"] == "external_update"] == ["Parts ordered"]


def test_an_acknowledgement_repeating_the_reference_without_request_id_is_a_no_op(
        core, seeded, client, carrier):
    task = new_task(core, seeded)
    fields = {"taskId": task["id"], "externalReference": "CAR-5"}
    assert result(call(client, ACK, fields, carrier), ACK)["status"] == "accepted"
    assert result(call(client, ACK, fields, carrier), ACK)["status"] == "duplicate"
    assert exchanges(core, task["id"]).count(("Acknowledgement", "In")) == 1


def test_engine_errors_are_client_faults_with_their_codes(core, seeded, client, carrier):
    task = new_task(core, seeded)
    call(client, ACK, {"taskId": task["id"], "externalReference": "CAR-9"}, carrier)

    mismatch = call(client, UPDATE, {"taskId": task["id"], "message": "x",
                                     "externalReference": "OTHER"}, carrier)
    assert fault(mismatch)[1].startswith("ReferenceMismatch: ")
    missing = call(client, GET, {"taskId": 987654}, carrier)
    assert fault(missing) == ("Client", "TaskNotFound: task 987654 not found")
    empty = call(client, ACK, {"taskId": task["id"], "externalReference": ""}, carrier)
    assert fault(empty) == ("Client", "InvalidInput: externalReference must not be empty")
    core.run(tasks.close_task, task["id"], "done")
    closed = call(client, REASSIGN, {"taskId": task["id"], "solution": "late"}, carrier,
                  version="1.2")
    assert closed.status_code == 400
    assert fault(closed) == ("Sender", f"TaskClosed: task {task['id']} is closed")


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_fault_codes_are_written_soap_client_as_the_contract_does(core, seeded, client, carrier,
                                                                  version):
    """`soap:Client` (SOAP 1.2: `soap:Sender`), the prefix bound to the envelope's namespace,
    whoever raised the fault: the use case, the login check or the schema."""
    env = {"1.1": "http://schemas.xmlsoap.org/soap/envelope/",
           "1.2": "http://www.w3.org/2003/05/soap-envelope"}[version]
    wrong = {**carrier, "password": "not-the-password"}
    answers = [call(client, GET, {"taskId": 987654}, carrier, version=version),
               call(client, GET, {"taskId": 1}, wrong, version=version),
               call(client, ACK, {"taskId": "abc", "externalReference": "R"}, carrier,
                    version=version)]
    for answer in answers:
        root = etree.fromstring(answer.data)
        node = root.find(f"{{{env}}}Body/{{{env}}}Fault")
        code = node.find("faultcode") if version == "1.1" else \
            node.find(f"{{{env}}}Code/{{{env}}}Value")
        assert code.text == ("soap:Client" if version == "1.1" else "soap:Sender")
        assert code.nsmap["soap"] == env
    ok = call(client, ACK, {"taskId": new_task(core, seeded)["id"], "externalReference": "R-1"},
              carrier, version=version)
    assert etree.fromstring(ok.data).prefix == "soap"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("fields, message", [
    ({"taskId": "abc", "externalReference": "R"}, "'abc' is not a valid value of the atomic "
                                                  "type 'xs:int'"),
    ({"taskId": "99999999999", "externalReference": "R"}, "is not a valid value"),
    ({"externalReference": "R"}, "Element 'externalReference': This element is not expected. "
                                 "Expected is ( taskId )"),
    ({"taskId": "1"}, "Missing child element(s)"),
    ({"taskId": "1", "externalReference": "R", "bogus": "1"}, "Element 'bogus'"),
])
def test_schema_violations_are_invalid_input_in_the_requests_version(client, carrier, version,
                                                                     fields, message):
    response = call(client, ACK, fields, carrier, version=version)
    code, text = fault(response)
    assert code == ("Client" if version == "1.1" else "Sender")
    assert text.startswith("InvalidInput: ") and message in text
    assert response.status_code == (500 if version == "1.1" else 400)


def test_an_unknown_operation_is_invalid_input(client, carrier):
    code, text = fault(call(client, "DeleteEverything", {"taskId": 1}, carrier))
    assert code == "Client" and text.startswith("InvalidInput: ")


def test_our_own_failures_are_server_faults_without_details(core, seeded, client, carrier):
    task = new_task(core, seeded)
    with core.db.begin() as conn:
        conn.execute(text("DROP TABLE task_notes"))
    response = call(client, UPDATE, {"taskId": task["id"], "message": "hello"}, carrier)

    code, message = fault(response)
    assert code == "Server" and message.startswith("Server: internal error (incident ")
    assert b"task_notes" not in response.data and b"Traceback" not in response.data


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_failure_while_authenticating_is_a_server_fault_too(core, seeded, client, carrier,
                                                              version):
    with core.db.begin() as conn:
        conn.execute(text("DROP TABLE ws_nonces"))
    response = call(client, GET, {"taskId": 1}, carrier, version=version, digest=True)

    assert response.headers["Content-Type"] == CONTENT_TYPES[version]
    assert fault(response)[0] == ("Server" if version == "1.1" else "Receiver")
    assert b"ws_nonces" not in response.data


def _hostile_bodies():
    for path in sorted(HOSTILE.glob("*.xml")):
        yield path.stem, path.read_bytes(), "DTDs and entity declarations are not accepted"
    yield "empty", b"", "the request body is empty"
    yield "not-xml", b"taskId=1&externalReference=x", "not well-formed XML"
    yield "json", b'{"taskId": 1}', "not well-formed XML"
    yield "html", b"<html><body>hi</body></html>", "not a SOAP 1.1 or 1.2 Envelope"
    yield "too-big", b"<a>" + b"x" * (1024 * 1024) + b"</a>", "exceeds 1048576 bytes"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("name, body, message", list(_hostile_bodies()),
                         ids=[case[0] for case in _hostile_bodies()])
def test_hostile_input_is_a_soap_fault_in_the_requests_version(client, version, name, body,
                                                               message):
    if version == "1.2":
        body = body.replace(b"http://schemas.xmlsoap.org/soap/envelope/",
                            b"http://www.w3.org/2003/05/soap-envelope")
    response = client.post(PATH, data=body, content_type=CONTENT_TYPES[version])

    assert response.headers["Content-Type"] == CONTENT_TYPES[version]
    code, text = fault(response)
    assert code == ("Client" if version == "1.1" else "Sender")
    assert text.startswith("InvalidInput: ") and message in text
    assert b"<html" not in response.data.lower() and b"Traceback" not in response.data
    assert b"root:" not in response.data  # /etc/passwd never shows up


@pytest.fixture
def spyne_debug_logging():
    """spyne at DEBUG, as a verbose logging set-up would have it: it then dumps requests."""
    names = ("spyne", "spyne.protocol.xml", "spyne.server._base")
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_spyne_does_not_log_request_payloads(core, seeded, carrier, caplog, spyne_debug_logging):
    client = create_app(core=core).test_client()
    caplog.set_level(logging.DEBUG)
    for fields in ({"taskId": "PAYLOAD-MARKER", "externalReference": "SECRET-REF"},
                   {"taskId": new_task(core, seeded)["id"], "externalReference": "SECRET-REF"}):
        call(client, ACK, fields, carrier)
    assert "PAYLOAD-MARKER" not in caplog.text and "SECRET-REF" not in caplog.text


def test_the_wsdl_names_the_public_url_whatever_the_host_header(core, client):
    response = client.get(PATH + "?wsdl", headers={"Host": "evil.example"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.data)
    assert root.get("targetNamespace") == NS
    addresses = [node.get("location") for node in root.iter("{*}address")]
    assert addresses == [core.settings.public_url + PATH] * 2
    assert b"evil.example" not in response.data
    bindings = {b.get("name") for b in root.iter("{http://schemas.xmlsoap.org/wsdl/}binding")}
    assert bindings == {"WorkflowServiceSoap", "WorkflowServiceSoap12"}
    [task_id] = root.xpath("//xs:complexType[@name='ProcessInstanceTaskExternalAcknowledgement']"
                           "//xs:element[@name='taskId']",
                           namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    assert (task_id.get("type"), task_id.get("minOccurs")) == ("xs:int", "1")


@pytest.mark.parametrize("path", [PATH, PATH.lower(), "/Workflow/Webservice/WorkflowService.asmx",
                                  PATH.upper() + "/"])
def test_the_path_is_matched_case_insensitively(client, path):
    assert client.get(path + "?WSDL").data == client.get(PATH + "?wsdl").data


def test_a_bare_get_lists_the_operations(client):
    response = client.get(PATH)
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for operation in (ACK, UPDATE, REASSIGN, GET):
        assert f"?op={operation}" in page
    assert "?wsdl" in page


def test_an_operation_page_shows_parameters_and_sample_requests(client):
    page = client.get(PATH + f"?op={ACK}").get_data(as_text=True)
    assert "<h2>ProcessInstanceTaskExternalAcknowledgement</h2>" in page
    assert "&lt;taskId&gt;int&lt;/taskId&gt;" in page
    assert "SOAPAction: &#34;ProcessInstanceTaskExternalAcknowledgement&#34;" in page
    assert "application/soap+xml" in page and "wsse:UsernameToken" in page
    assert "&lt;requestId&gt;string&lt;/requestId&gt;  &lt;!-- optional --&gt;" in page


@pytest.mark.parametrize("sample", [0, 2], ids=["soap11", "soap12"])
def test_the_sample_request_of_an_operation_page_works_once_filled_in(core, seeded, client,
                                                                      carrier, sample):
    page = client.get(PATH + f"?op={ACK}").get_data(as_text=True)
    head, body = html.unescape(re.findall(r"<pre>(.*?)</pre>", page, re.S)[sample]).split("\n\n")
    task = new_task(core, seeded)
    for placeholder, value in (
            ("<wsse:Username>string<", f"<wsse:Username>{carrier['username']}<"),
            (">string</wsse:Password>", f">{carrier['password']}</wsse:Password>"),
            (">base64Binary<", f">{base64.b64encode(os.urandom(16)).decode()}<"),
            (">dateTime<", f">{now_text()}<"), ("<taskId>int<", f"<taskId>{task['id']}<"),
            ("<externalReference>string<", "<externalReference>FROM-THE-PAGE<"),
            ("<requestId>string<", "<requestId>page-1<")):
        body = body.replace(placeholder, value)
    content_type = re.search(r"Content-Type: (.*)", head).group(1)

    answer = result(client.post(PATH, data=body.encode(), content_type=content_type), ACK)
    assert (answer["status"], answer["externalReference"]) == ("accepted", "FROM-THE-PAGE")


def test_unknown_operation_pages_and_other_methods(client):
    assert client.get(PATH + "?op=<script>").status_code == 404
    assert b"<script>" not in client.get(PATH + "?op=<script>").data
    assert client.put(PATH, data=b"x").status_code == 405
    head = client.head(PATH + "?wsdl")
    assert head.status_code == 200 and head.data == b""
