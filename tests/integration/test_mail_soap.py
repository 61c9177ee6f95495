"""SOAP by e-mail against the real WorkflowService: the same operations, WS-Security and
hardened parsing as over HTTP; the response is mailed back (CONTRACT §5)."""

from __future__ import annotations

from email.message import EmailMessage

from lxml import etree

from engine.services import mail_intake, mail_outcome, queries
from engine.worker import Worker
from tests.fixtures.soap.helpers import CONTENT_TYPES, NS, envelope, security_header
from tests.integration.test_mail_support import new_task, task

PARTNER = "erp@carrier.example"


def soap_mail(body: bytes, version: str = "1.1", attach: bool = False,
              reply_to: str | None = None, message_id: str = "<soap-1@carrier.example>") -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = PARTNER, "liaison@liaison.local"
    message["Subject"], message["Message-ID"] = "SOAP request", message_id
    if reply_to:
        message["Reply-To"] = reply_to
    maintype, subtype = CONTENT_TYPES[version].split(";")[0].split("/")
    if attach:
        message.set_content("The request is attached.")
        message.add_attachment(body, maintype=maintype, subtype=subtype, filename="req.xml")
    else:
        message.set_content(body, maintype=maintype, subtype=subtype)
    return bytes(message)


def acknowledgement(seeded, task_id: int, reference: str, password: str | None = None,
                    version: str = "1.1") -> bytes:
    provider = seeded["provider"]
    header = security_header(provider["username"], password or provider["password"])
    return envelope("ProcessInstanceTaskExternalAcknowledgement",
                    {"taskId": task_id, "externalReference": reference}, header, version)


def process(core, raw: bytes) -> dict:
    inbox_id = core.run(mail_intake.receive, raw, "smtp", PARTNER)
    Worker(core).run_once()
    Worker(core).run_once()  # delivers the mailed response
    return core.run(mail_outcome.message_view, inbox_id)


def answer_of(sent: EmailMessage) -> etree._Element:
    part = next(iter(sent.iter_attachments()), None) or sent
    return etree.fromstring(part.get_payload(decode=True))


def test_an_acknowledgement_by_soap_mail_sets_the_reference_and_is_answered(core, seeded,
                                                                           mailer):
    created = new_task(core, seeded)
    outcome = process(core, soap_mail(acknowledgement(seeded, created["id"], "SOAP-MAIL-1")))

    assert outcome["status"] == "applied", outcome
    assert task(core, created["id"])["external_reference"] == "SOAP-MAIL-1"
    kinds = [(e["request_type"], e["direction"], e["channel"]) for e in
             core.run(queries.exchanges_of_task, created["id"])]
    assert ("Acknowledgement", "In", "email") in kinds  # it came by mail, not by HTTP
    [response] = [m for m in mailer.sent if m["To"] == PARTNER]
    assert response["Auto-Submitted"] == "auto-replied"
    status = answer_of(response).findtext(f".//{{{NS}}}status")
    assert status == "accepted"


def test_soap_12_as_an_attachment_is_answered_to_the_reply_address(core, seeded, mailer):
    created = new_task(core, seeded)
    raw = soap_mail(acknowledgement(seeded, created["id"], "SOAP-MAIL-2", version="1.2"),
                    version="1.2", attach=True, reply_to="soap-desk@carrier.example")
    assert process(core, raw)["status"] == "applied"
    [response] = [m for m in mailer.sent if m["To"] == "soap-desk@carrier.example"]
    [part] = list(response.iter_attachments())
    assert part.get_content_type() == "application/soap+xml"
    assert task(core, created["id"])["external_reference"] == "SOAP-MAIL-2"


def test_a_wrong_password_is_answered_with_a_fault_and_changes_nothing(core, seeded, mailer):
    created = new_task(core, seeded)
    outcome = process(core, soap_mail(acknowledgement(seeded, created["id"], "EVIL",
                                                      password="not-the-password")))
    assert outcome["status"] == "rejected" and "fault" in outcome["outcome"]
    assert task(core, created["id"])["external_reference"] is None
    [response] = [m for m in mailer.sent if m["To"] == PARTNER]
    assert b"invalid username or password" in etree.tostring(answer_of(response))


def test_a_hostile_envelope_is_refused_by_the_same_guard(core, seeded, mailer):
    created = new_task(core, seeded)
    body = acknowledgement(seeded, created["id"], "&xxe;").replace(
        b'<?xml version="1.0" encoding="utf-8"?>',
        b'<?xml version="1.0" encoding="utf-8"?><!DOCTYPE s [<!ENTITY xxe SYSTEM '
        b'"file:///etc/passwd">]>')
    outcome = process(core, soap_mail(body))
    assert outcome["status"] == "rejected"
    assert task(core, created["id"])["external_reference"] is None
    [response] = [m for m in mailer.sent if m["To"] == PARTNER]
    assert b"root:" not in etree.tostring(answer_of(response))
