"""Property-based fuzzing of what strangers send us: SOAP requests (the guard, and the whole
endpoint), mail and its tags, uploaded BPMN. Whatever arrives, the answer is a refusal of
the documented kind, never an unhandled exception."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from engine.adapters.bpmn import validate_bpmn
from engine.adapters.mail_parsing import parse_message, read_tags
from engine.domain import tags
from engine.exceptions import BpmnInvalid, InvalidInput
from engine.services import tasks
from engine.services.operators import OPERATORS
from tests.fixtures.soap.helpers import CONTENT_TYPES, PATH, envelope, security_header
from webservice import guard
from webservice.faults import SOAP11_ENV, SOAP12_ENV

ROOT = Path(__file__).resolve().parents[2]
MODELS = [p.read_bytes() for p in sorted((ROOT / "processes").glob("*.bpmn"))] + \
    [p.read_bytes() for p in sorted((ROOT / "tests" / "fixtures" / "bpmn").glob("*.bpmn"))]
# CI: the same 150 examples each run. The soak (python -m tests.fault.soak) sets
# LIAISON_FUZZ_EXAMPLES for many more, drawn afresh each time.
EXAMPLES = int(os.environ.get("LIAISON_FUZZ_EXAMPLES") or 150)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize="LIAISON_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# -- SOAP --------------------------------------------------------------------------------------

XML_PIECES = st.sampled_from([
    '<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.0" encoding="klingon"?>', "\ufeff", '<!DOCTYPE e [<!ENTITY a "b">]>',
    '<!DOCTYPE s:Envelope SYSTEM "file:///etc/passwd">', f'<s:Envelope xmlns:s="{SOAP11_ENV}">',
    f'<s:Envelope xmlns:s="{SOAP12_ENV}">', "<s:Header>", "</s:Header>", "<s:Body>", "</s:Body>",
    "</s:Envelope>", '<w:ProcessInstanceTaskExternalAcknowledgement xmlns:w="urn:liaison:workflow">',
    "</w:ProcessInstanceTaskExternalAcknowledgement>", "<w:taskId>", "</w:taskId>", "&a;",
    "&#0;", "&#x1F600;", "<![CDATA[x]]>", "<!--c-->", "<?pi x?>", "<", ">", "&", '"', "1",
    "99999999999999999999", "-1", "é", "\x00", "\U0001F600"])
XML_LIKE = st.lists(XML_PIECES | st.text(max_size=12), max_size=14).map("".join)
CONTENT_TYPE = st.sampled_from([*CONTENT_TYPES.values(), "text/xml", "application/xml",
                                "text/xml; charset=latin-1", "text/xml; charset=nope",
                                "application/soap+xml; charset=utf-16", "text/html", ""]) | \
    st.text(max_size=30)


def _encoded(text: str, codec: str) -> bytes:
    return text.encode(codec, errors="replace")


BODIES = st.builds(_encoded, XML_LIKE, st.sampled_from(["utf-8", "utf-16", "latin-1"])) | \
    st.binary(max_size=300)


@FUZZ
@given(body=BODIES, content_type=CONTENT_TYPE,
       length=st.none() | st.sampled_from(["", "abc", "-1", "99999999", "0"]))
def test_the_soap_guard_refuses_or_passes_but_never_breaks(body, content_type, length):
    environ = {"CONTENT_TYPE": content_type, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)) if length is None else length}
    try:
        passed = guard.read_envelope(environ, 4096)
    except guard.Refused as refused:
        assert isinstance(refused.error, InvalidInput)
        return
    assert passed.root.tag in (f"{{{SOAP11_ENV}}}Envelope", f"{{{SOAP12_ENV}}}Envelope")


TASK_IDS = st.sampled_from(["1"] * 6 + ["2", "0", "-5", "2147483648", "abc", "", " 1 "])
FIELD_VALUES = st.sampled_from(["1", "2", "0", "-5", "2147483648", "abc", "", "<x/>",
                                "&amp;lt;", "  7  ", "1e3"]) | st.text(max_size=30).map(
    lambda t: "".join(c for c in t if c.isprintable()).replace("&", "&amp;").replace("<", "&lt;"))
SCHEMA = {  # the operations' fields in their order (document/literal: order matters)
    "ProcessInstanceTaskExternalAcknowledgement": ("taskId", "externalReference", "requestId"),
    "ProcessInstanceTaskExternalUpdateMessage": ("taskId", "message", "externalReference",
                                                 "requestId"),
    "ProcessInstanceTaskExternalReassignment": ("taskId", "solution", "message",
                                                "externalReference", "requestId"),
    "GetProcessInstanceTask": ("taskId",),
    "NoSuchOperation": ("taskId",),
}


@st.composite
def soap_requests(draw) -> tuple[str, dict]:
    """Mostly well-ordered fields with odd values (deep into the use cases), sometimes a
    shuffled or extended set (spyne's schema validation)."""
    operation = draw(st.sampled_from(sorted(SCHEMA)))
    names = [n for n in SCHEMA[operation] if n == "taskId" or draw(st.booleans())]
    if draw(st.integers(0, 9)) == 0:
        names = draw(st.permutations(names + ["unknownField"]))
    return operation, {name: draw(TASK_IDS if name == "taskId" else FIELD_VALUES)
                       for name in names}


@pytest.fixture
def soap_client(core, seeded):
    from app import create_app

    for group in ("Carrier Group", "Desk"):  # tasks 1 and 2: the provider's, and another's
        core.run(tasks.create_task, seeded["ticket"]["id"], f"Task of {group}", group=group)
    return create_app(core=core).test_client(), seeded["provider"]


@FUZZ
@given(request=soap_requests(), version=st.sampled_from(["1.1", "1.2"]),
       credentials=st.sampled_from(["valid"] * 6 + ["wrong", "none"]))
def test_the_soap_endpoint_answers_every_request_with_a_result_or_a_typed_fault(
        soap_client, request, version, credentials):
    (operation, fields), (client, provider) = request, soap_client
    # wrong credentials name another user: the provider's own login must not be throttled
    username, password = (provider["username"], provider["password"]) if credentials == "valid" \
        else ("intruder", "guess")
    header = "" if credentials == "none" else security_header(username, password)
    response = client.post(PATH, data=envelope(operation, fields, header, version),
                           content_type=CONTENT_TYPES[version])

    assert response.status_code in (200, 400, 500)
    root = etree.fromstring(response.data)  # always a SOAP answer, never an HTML page
    text = " ".join(root.itertext())
    assert "internal error" not in text, text


# -- mail and tags -----------------------------------------------------------------------------

HEADER_LINES = st.sampled_from([
    "From: noc@carrier.example", "From: =?utf-8?q?=E2=82=AC?= <x@y>", "From: <<>>", "To: ",
    "Subject: [Task #12] Re: x", "Subject: =?bogus?x?y?=", "Message-ID: <a@b>", "Message-ID: ",
    "Content-Type: multipart/mixed; boundary=b", "Content-Type: text/html; charset=nope",
    "Content-Type: application/soap+xml", "Content-Transfer-Encoding: base64",
    "Content-Transfer-Encoding: quoted-printable", "Auto-Submitted: auto-replied",
    "Precedence: bulk", "Return-Path: <>", "X-Loop: liaison@liaison.local", " folded"])
BODY_LINES = st.sampled_from(["TaskId: 12", "Token: abc", "ExternalReference: R-1",
                              "Action: Update", "> TaskId: 13", "--b", "--b--",
                              "Content-Type: text/plain", "=E2=82", "PHA+aGk8L3A+", "<p>hi</p>",
                              "-- ", "On Mon, x wrote:"]) | st.text(max_size=40)
RAW_MAIL = st.builds(lambda head, body: ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body))
                     .encode("utf-8", errors="replace"),
                     st.lists(HEADER_LINES, max_size=10), st.lists(BODY_LINES, max_size=12)) | \
    st.binary(max_size=400)
LABELS = st.dictionaries(st.sampled_from(list(tags.DEFAULT_LABELS)),
                         st.text(max_size=12), max_size=4)


@FUZZ
@given(body=st.text(max_size=400), overrides=LABELS)
def test_the_tag_parser_reads_any_text(body, overrides):
    labels = tags.labels_for(overrides)
    found = tags.parse_tags(body, labels)
    assert set(found.values) <= set(tags.DEFAULT_LABELS)
    assert tags.task_id_from_subject(body) is None or tags.SUBJECT_TASK.search(body)


@FUZZ
@given(raw=RAW_MAIL, envelope_from=st.none() | st.sampled_from(["", "a@b", "<>"]),
       overrides=LABELS)
def test_any_mail_parses_and_its_tags_can_be_read(raw, envelope_from, overrides):
    mail = parse_message(raw, envelope_from)
    read_tags(mail, tags.labels_for(overrides))


# -- BPMN --------------------------------------------------------------------------------------

def _mutate(data: bytes, rng: random.Random, steps: int) -> bytes:
    root = etree.fromstring(data)
    for _ in range(steps):
        elements = list(root.iter())
        element = rng.choice(elements)
        action = rng.randrange(6)
        if action == 0 and element is not root:
            element.getparent().remove(element)
        elif action == 1 and element is not root:
            element.addnext(etree.fromstring(etree.tostring(element)))  # a duplicate id
        elif action == 2 and element.attrib:
            name = rng.choice(list(element.attrib))
            element.set(name, rng.choice(["", "x", "1", "}{", "__import__('os')", "PT-1H",
                                          "provider.nope", "true", "R/PT1S", "a" * 300]))
        elif action == 3:
            element.text = rng.choice(["1/0", "import os", "x" * 50, "while True: pass",
                                       "${oops}", "", "ns:unknown", "open('/etc/passwd')"])
        elif action == 4 and len(elements) > 2:
            rng.choice(elements[1:]).append(etree.fromstring(etree.tostring(element)))
        elif action == 5:
            element.tag = rng.choice([element.tag, "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
                                      + rng.choice(["task", "scriptTask", "timerEventDefinition",
                                                    "complexGateway", "foo"])])
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@FUZZ
@given(model=st.sampled_from(range(len(MODELS))), seed=st.integers(0, 2**32),
       steps=st.integers(1, 6), cut=st.none() | st.integers(0, 4000))
def test_the_bpmn_validator_refuses_broken_models_with_reasons(model, seed, steps, cut):
    data = _mutate(MODELS[model], random.Random(seed), steps)  # noqa: S311 - fuzzing
    if cut is not None:
        data = data[:cut]
    try:
        validate_bpmn(data, "fuzzed.bpmn", OPERATORS)
    except BpmnInvalid as refused:
        assert refused.errors and all(e["message"] for e in refused.errors)
