"""SOAP by e-mail, the adapter side: the SOAP service called in-process with an envelope
that came by mail, its answer composed as a mail, and the outbox channel that sends it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from engine.adapters.mail_parsing import ParsedMail

REPLY_CHANNEL = "email-raw"  # the outbox channel of composed answers


@dataclass(frozen=True)
class SoapAnswer:
    body: bytes
    content_type: str
    fault: bool


class SoapEndpoint(Protocol):
    """The SOAP service's operations for a request that came by e-mail."""

    def answer(self, body: bytes, content_type: str) -> SoapAnswer: ...



class WsgiSoapEndpoint:
    """The SOAP service's own WSGI endpoint, called in-process with the mail's envelope as
    the request body: the same guard, WS-Security checks and operations as over HTTP."""

    def __init__(self, wsgi_app, path: str) -> None:
        self.app, self.path = wsgi_app, path

    def answer(self, body: bytes, content_type: str) -> SoapAnswer:
        from wsgiref.util import setup_testing_defaults
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": self.path, "REMOTE_ADDR": "e-mail",
                   "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body), "liaison.channel": "email"}
        setup_testing_defaults(environ)
        started: list = []
        chunks = self.app(environ, lambda status, headers, exc_info=None:
                          started.append((status, dict(headers))))
        try:
            answer = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        status, headers = started[0]
        return SoapAnswer(answer, headers.get("Content-Type", "text/xml; charset=utf-8"),
                          fault=int(status.split()[0]) >= 400)


def compose_soap_reply(request: ParsedMail, body: bytes, content_type: str, own_address: str,
                       to: str, bcc: str | None) -> EmailMessage:
    """The SOAP response as mail, shaped like the request: the whole body, or an attachment.
    Marked auto-replied (RFC 3834) so that no well-behaved system answers it in turn."""
    reply = EmailMessage()
    reply["From"], reply["To"] = own_address, to
    if bcc:
        reply["Bcc"] = bcc
    subject = request.subject or "SOAP request"
    reply["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    reply["Message-ID"] = make_msgid(domain=own_address.partition("@")[2] or None)
    reply["In-Reply-To"] = reply["References"] = request.message_id
    reply["Date"] = formatdate(usegmt=True)
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Loop"] = own_address
    kind = content_type.split(";")[0].strip().lower() or "text/xml"
    maintype, _, subtype = kind.partition("/")
    if request.soap is not None and request.soap.as_attachment:
        reply.set_content("The SOAP response is attached.\n")
        reply.add_attachment(body, maintype=maintype, subtype=subtype, filename="response.xml")
    else:
        reply.set_content(body, maintype=maintype, subtype=subtype)
    return reply



class RawMailChannel:
    """Outbox channel for mail composed in full beforehand (SOAP-by-e-mail answers)."""

    def __init__(self, mailer, name: str = REPLY_CHANNEL) -> None:
        self.mailer = mailer
        self.name = name

    def render(self, provider, request) -> dict:  # pragma: no cover - never renders requests
        raise NotImplementedError("the raw-mail channel only delivers composed mail")

    def deliver(self, message: dict, delivery) -> dict:
        mail = message_from_string(message["eml"], policy=policy.default)
        self.mailer.send(mail)
        return {"message_id": str(mail.get("Message-ID", ""))}
