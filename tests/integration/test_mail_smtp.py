"""The SMTP listener on loopback, driven by smtplib; outbound answers caught by an aiosmtpd
sink. 250 means stored; processing is the worker's."""

from __future__ import annotations

import smtplib
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from engine.adapters.mail_soap import SoapAnswer
from engine.adapters.providers import SmtpMailer
from engine.core import smtp_listener
from engine.services import mail_intake, mail_outcome
from engine.worker import Worker
from tests.conftest import free_port, make_core, seed
from tests.integration.test_mail_support import new_task, reply, task

OURS = "liaison@liaison.local"
SOAP_REQUEST = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
 <soap:Body><GetProcessInstanceTask xmlns="urn:liaison:workflow"><taskId>1</taskId>
 </GetProcessInstanceTask></soap:Body></soap:Envelope>"""
SOAP_ANSWER = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<GetProcessInstanceTaskResponse xmlns="urn:liaison:workflow"/></soap:Body></soap:Envelope>"""


class Sink:
    """An aiosmtpd handler keeping what it receives (envelope recipients and message)."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        self.arrived.set()
        return "250 OK"


class FakeSoapEndpoint:
    """Stands in for the SOAP service: records requests, answers with a fixed envelope."""

    def __init__(self, fault: bool = False) -> None:
        self.requests: list[tuple[bytes, str]] = []
        self.fault = fault

    def answer(self, body: bytes, content_type: str) -> SoapAnswer:
        self.requests.append((body, content_type))
        return SoapAnswer(SOAP_ANSWER, "text/xml; charset=utf-8", self.fault)


def start_listener(core) -> tuple[Controller, int]:
    port = free_port()
    controller = smtp_listener(core, "127.0.0.1", port)
    controller.start()
    return controller, port


@pytest.fixture
def listener(core):
    controller, port = start_listener(core)
    yield port
    controller.stop()


@pytest.fixture
def sink():
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def send(port: int, raw: bytes, sender="noc@carrier.example", to=OURS):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail(sender)[0] == 250
        code, answer = smtp.rcpt(to)
        if code != 250:
            return code, answer
        return smtp.data(raw)


def inbox(core) -> list[dict]:
    return core.run(mail_outcome.list_messages)


def test_a_reply_over_smtp_is_stored_before_250_and_applied_by_the_worker(core, seeded,
                                                                         listener):
    created = new_task(core, seeded)
    code, answer = send(listener, reply(created["id"], "ExternalReference: SMTP-1"))

    assert code == 250 and b"stored as inbound mail" in answer
    [stored] = inbox(core)
    assert (stored["source"], stored["status"]) == ("smtp", "pending")  # safe, not yet applied
    Worker(core).run_once()
    assert task(core, created["id"])["external_reference"] == "SMTP-1"
    assert inbox(core)[0]["status"] == "applied"


def test_mail_over_the_size_limit_gets_552_and_nothing_is_stored(tmp_path, sqlite_url, mailer):
    small = make_core(sqlite_url, tmp_path, mailer, mail_max_bytes=4000)
    controller, port = start_listener(small)
    try:
        big = b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n"
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp, \
                pytest.raises(smtplib.SMTPSenderRefused) as refused:  # smtplib declares SIZE=
            smtp.sendmail("noc@carrier.example", [OURS], big * 100)
        assert refused.value.smtp_code == 552
        code, _ = send(port, big * 100)  # a client that does not declare its size
        assert code == 552
        assert inbox(small) == []
    finally:
        controller.stop()
        small.close()


def test_only_mail_for_our_domain_is_accepted(core, listener):
    code, answer = send(listener, b"Subject: x\r\n\r\nhi\r\n", to="someone@example.org")
    assert code == 550 and b"relaying denied" in answer
    assert send(listener, b"Subject: x\r\n\r\nhi\r\n", to="ops+7@liaison.local")[0] == 250


def test_when_the_message_cannot_be_stored_the_sender_is_told_to_retry(core, listener):
    with core.db.begin() as connection:
        connection.execute(text("DROP TABLE mail_inbox"))
    code, answer = send(listener, b"Subject: x\r\n\r\nhi\r\n")
    assert code == 451 and b"try again later" in answer


@pytest.fixture
def soap_core(tmp_path, sqlite_url, sink):
    """A core whose outbound mail goes over SMTP to the sink, with a stand-in SOAP service."""
    _, port = sink
    core = make_core(sqlite_url, tmp_path, SmtpMailer("127.0.0.1", port))
    core.settings = core.settings.with_overrides(
        extra={"LIAISON_SOAP_BY_EMAIL_BCC": "audit@partner.example"})
    core.soap_mail_endpoint = FakeSoapEndpoint()
    seed(core)
    yield core
    core.close()


def soap_mail(reply_to: str | None = None, as_part: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = "erp@partner.example"
    message["To"] = OURS
    message["Subject"] = "GetProcessInstanceTask"
    message["Message-ID"] = f"<soap-{reply_to}-{as_part}@partner.example>"
    if reply_to:
        message["Reply-To"] = reply_to
    if as_part:
        message.set_content("Request attached.")
        message.add_attachment(SOAP_REQUEST, maintype="application", subtype="soap+xml",
                               filename="request.xml")
    else:
        message.set_content(SOAP_REQUEST, maintype="text", subtype="xml")
    return bytes(message)


def test_soap_by_email_is_answered_to_the_reply_address_with_a_bcc(soap_core, sink):
    handler, _ = sink
    controller, port = start_listener(soap_core)
    try:
        assert send(port, soap_mail(reply_to="soap-replies@partner.example"),
                    sender="erp@partner.example")[0] == 250
        Worker(soap_core).run_once()
        Worker(soap_core).run_once()  # delivers the queued answer
    finally:
        controller.stop()

    [(body, content_type)] = soap_core.soap_mail_endpoint.requests
    assert b"GetProcessInstanceTask" in body and content_type.startswith("text/xml")
    assert handler.arrived.wait(10)
    [(recipients, answer)] = handler.received
    assert sorted(recipients) == ["audit@partner.example", "soap-replies@partner.example"]
    assert answer["To"] == "soap-replies@partner.example" and answer["Bcc"] is None
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer.get_content_type() == "text/xml"
    assert b"GetProcessInstanceTaskResponse" in answer.get_payload(decode=True)


def test_soap_as_an_attachment_is_answered_with_an_attachment_to_the_sender(soap_core, sink):
    handler, _ = sink
    outcome = deliver_and_flush(soap_core, soap_mail(as_part=True))
    assert outcome["status"] == "applied"
    [(recipients, answer)] = handler.received
    assert "erp@partner.example" in recipients
    [part] = list(answer.iter_attachments())
    assert part.get_content_type() == "text/xml"


def test_soap_answers_never_go_to_our_own_address(soap_core, sink):
    handler, _ = sink
    outcome = deliver_and_flush(soap_core, soap_mail(reply_to=OURS))
    assert "not mailed" in outcome["outcome"]
    assert handler.received == []


def test_soap_by_email_can_be_switched_off(soap_core, sink):
    soap_core.settings = soap_core.settings.with_overrides(
        extra={"LIAISON_SOAP_BY_EMAIL": "0"})
    outcome = deliver_and_flush(soap_core, soap_mail())
    assert soap_core.soap_mail_endpoint.requests == []
    assert outcome["status"] == "rejected" and "names no task" in outcome["outcome"]


def test_an_auto_reply_carrying_soap_is_not_answered(soap_core, sink):
    handler, _ = sink
    raw = soap_mail().replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:", 1)
    assert deliver_and_flush(soap_core, raw)["status"] == "rejected"
    assert soap_core.soap_mail_endpoint.requests == [] and handler.received == []


def deliver_and_flush(core, raw: bytes) -> dict:
    inbox_id = core.run(mail_intake.receive, raw, "smtp", "erp@partner.example")
    Worker(core).run_once()
    Worker(core).run_once()
    return core.run(mail_outcome.message_view, inbox_id)
