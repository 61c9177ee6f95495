"""Reading inbound mail as real clients write it: what the person wrote, the tags, and the
signs of automated mail. No I/O beyond reading fixtures."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from engine.adapters.mail_parsing import parse_message, read_tags
from engine.adapters.mail_soap import compose_soap_reply
from engine.adapters.mail_text import html_to_text, split_reply
from engine.domain.tags import labels_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
SOAP_11 = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body><GetProcessInstanceTask xmlns="urn:liaison:workflow"><taskId>4</taskId>
  </GetProcessInstanceTask></soap:Body></soap:Envelope>"""


def fixture(name: str, task_id: int = 7, signature: str = "0123abcd") -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.replace(b"@@TASK@@", str(task_id).encode()).replace(b"@@TOKEN@@", signature.encode())


def plain(body: str, **headers) -> bytes:
    mail = EmailMessage()
    mail["From"] = headers.pop("From", "NOC <noc@carrier.example>")
    mail["To"] = "liaison@liaison.local"
    mail["Subject"] = headers.pop("Subject", "Re: [Task #3] Submit Request: x")
    mail["Message-ID"] = headers.pop("Message_ID", "<m-1@carrier.example>")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return bytes(mail)


def test_outlook_html_only_reply_gives_the_typed_reference_and_the_quoted_tags():
    mail = parse_message(fixture("outlook_html_acknowledgement.eml"))
    found = read_tags(mail, labels_for(None))

    assert found.values == {"task_id": "7", "token": "0123abcd",
                            "external_reference": "INC0012345"}
    # windows-1252 en dash decoded; Outlook's style sheet and header block are not text
    assert found.text.endswith("our ticket for this request – an engineer will call the site.")
    assert "font-family" not in mail.text
    assert "Router dead" not in mail.reply and "Router dead" in mail.quoted


def test_gmail_reply_text_above_the_wrapped_attribution_is_the_message():
    mail = parse_message(fixture("gmail_quoted_update.eml"))
    found = read_tags(mail, labels_for(None))

    assert found.values["action"] == "Update"
    assert found.values["task_id"] == "7" and found.values["token"] == "0123abcd"
    assert found.text == "Engineer dispatched, ETA 14:00. Grüße aus München."
    assert mail.quoted.startswith("On Mon, 23 Nov 2026")


def test_apple_mail_multipart_with_an_image_reads_the_plain_part():
    mail = parse_message(fixture("apple_mail_resolve.eml"))
    found = read_tags(mail, labels_for(None))

    assert found.values["action"] == "Resolve"
    assert found.values["external_reference"] == "INC0012345"  # kept in the quote
    assert found.text == "Line card replaced, the link is stable since 15:05 – see the photo."
    assert mail.return_path == "tom.becker@carrier.example"


def test_html_blockquotes_become_quoted_lines():
    text = html_to_text("<div>Done.<br>Action: Resolve</div><blockquote type='cite'>"
                        "<div>TaskId: 5</div><div>Token: x</div></blockquote>"
                        "<script>alert(1)</script>")
    assert text.splitlines() == ["Done.", "Action: Resolve", "> TaskId: 5", "> Token: x"]
    reply, quoted = split_reply(text)
    assert reply == "Done.\nAction: Resolve"
    assert quoted == "TaskId: 5\nToken: x"


def test_tags_typed_above_the_quote_win_over_the_quoted_ones():
    mail = parse_message(plain("ExternalReference: NEW-2\n\n> ExternalReference: OLD-1\n"
                               "> TaskId: 3\n"))
    assert read_tags(mail, labels_for(None)).values["external_reference"] == "NEW-2"


def test_provider_labels_are_matched_case_insensitively():
    labels = labels_for({"task_id": "Ticket-Ref", "token": "Signature"})
    mail = parse_message(plain("please close\n\nticket-ref: 12\nSIGNATURE: abc\n"))
    found = read_tags(mail, labels)
    assert found.values == {"task_id": "12", "token": "abc"}
    assert found.text == "please close"


def test_signature_below_the_delimiter_is_not_part_of_the_message():
    reply, _ = split_reply("Fixed.\n-- \nJane Doe\nTaskId: 99\n")
    assert reply == "Fixed."


def test_unknown_charset_is_read_without_failing():
    raw = (b"From: a@carrier.example\r\nTo: liaison@liaison.local\r\nSubject: x\r\n"
           b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nStatus: ok\r\n")
    assert parse_message(raw).text.strip() == "Status: ok"


def test_a_missing_message_id_gets_a_stable_one():
    raw = b"From: a@carrier.example\r\nSubject: x\r\n\r\nhello\r\n"
    assert parse_message(raw).message_id == parse_message(raw).message_id
    assert parse_message(raw).message_id != parse_message(raw + b"!").message_id


@pytest.mark.parametrize(("headers", "reason"), [
    ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
    ({"Auto_Submitted": "auto-generated; owner-email=x@y"}, "Auto-Submitted: auto-generated"),
    ({"Precedence": "bulk"}, "Precedence: bulk"),
    ({"Precedence": "Junk"}, "Precedence: junk"),
    ({"Precedence": "list"}, "Precedence: list"),
    ({"X_Autoreply": "yes"}, "X-Autoreply"),
    ({"Return_Path": "<>"}, "null return path"),
    ({"From": "Mail Delivery System <MAILER-DAEMON@carrier.example>"}, "mailer-daemon"),
])
def test_automated_mail_is_recognised(headers, reason):
    mail = parse_message(plain("Out of office", **headers))
    assert mail.auto_reason is not None and reason in mail.auto_reason


def test_the_envelope_sender_decides_the_return_path():
    assert parse_message(plain("hi"), envelope_from="<>").auto_reason == \
        "auto-reply (null return path <>)"
    assert parse_message(plain("hi"), envelope_from="noc@carrier.example").auto_reason is None


def test_a_person_writing_is_not_automated():
    assert parse_message(plain("Thanks", Auto_Submitted="no")).auto_reason is None


def test_soap_envelope_as_body_or_as_a_part_is_found():
    as_body = EmailMessage()
    as_body["From"], as_body["Subject"] = "erp@partner.example", "request"
    as_body.set_content(SOAP_11, maintype="text", subtype="xml")
    found = parse_message(bytes(as_body)).soap
    assert found.content_type.startswith("text/xml") and not found.as_attachment
    assert b"GetProcessInstanceTask" in found.body

    as_part = EmailMessage()
    as_part["From"], as_part["Subject"] = "erp@partner.example", "request"
    as_part.set_content("see attachment")
    body12 = SOAP_11.replace(b"http://schemas.xmlsoap.org/soap/envelope/",
                             b"http://www.w3.org/2003/05/soap-envelope")
    as_part.add_attachment(body12, maintype="application", subtype="soap+xml",
                           filename="req.xml")
    found = parse_message(bytes(as_part)).soap
    assert found.content_type.startswith("application/soap+xml") and found.as_attachment

    assert parse_message(plain("<b>not soap</b>")).soap is None


def test_the_soap_response_mail_is_marked_auto_replied_and_threads_to_the_request():
    request = EmailMessage()
    request["From"], request["Subject"] = "erp@partner.example", "GetTask"
    request["Message-ID"] = "<req-1@partner.example>"
    request.set_content(SOAP_11, maintype="text", subtype="xml")
    parsed = parse_message(bytes(request))
    reply = compose_soap_reply(parsed, b"<answer/>", "text/xml; charset=utf-8",
                               "liaison@liaison.local", "erp@partner.example", "audit@x.example")
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<req-1@partner.example>"
    assert reply["Subject"] == "Re: GetTask" and reply["Bcc"] == "audit@x.example"
    assert reply.get_content_type() == "text/xml"
