"""Inbound mail as plain values, parsed with the standard library's `email` (modern policy):
its addresses, the signs of automated mail, a SOAP envelope it carries, and its tags."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parseaddr

from engine.adapters.mail_text import body_text, split_reply
from engine.domain import tags

AUTO_PRECEDENCE = {"bulk", "junk", "list"}
DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster"}
SOAP_TYPES = {"application/soap+xml": "1.2", "text/xml": "1.1", "application/xml": "1.1"}
SOAP_11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_12 = "http://www.w3.org/2003/05/soap-envelope"
# Only a hint that a part is SOAP; whether it is acceptable is the SOAP service's guard's call.
ENVELOPE_HINT = re.compile(rb"<([\w.-]{1,40}:)?Envelope[\s>]")


class _RememberingPolicy(EmailPolicy):
    """The modern policy, remembering parsed headers: the email package parses a header anew
    each time it is read (a mail's Content-Type alone about ten times), and most values
    recur from mail to mail. Parsed headers are immutable, so sharing them is safe."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name") or len(value) > 1000:
            return super().header_fetch_parse(name, value)
        return _parsed_header(name, value)


@functools.lru_cache(maxsize=4096)
def _parsed_header(name: str, value: str):
    return policy.default.header_fetch_parse(name, value)


POLICY = _RememberingPolicy()


@dataclass(frozen=True)
class SoapPart:
    body: bytes
    content_type: str  # as the SOAP service expects it: text/xml (1.1) or application/soap+xml
    as_attachment: bool


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    from_addr: str  # lower-case addr-spec, "" when missing
    from_header: str  # as written, with the display name: what rules look at
    to_addrs: tuple[str, ...]
    to_header: str
    reply_to: str | None
    subject: str
    text: str  # the whole text body (HTML reduced to text)
    reply: str  # what stands above the quoted mail
    quoted: str  # the quoted mail, quote markers removed
    return_path: str | None  # None: unknown, "": the null sender <>
    auto_reason: str | None  # set when the mail is an auto-reply or bulk mail
    loop_header: str  # X-Loop, to recognise our own mail coming back
    soap: SoapPart | None


def read_tags(mail: ParsedMail, labels: dict[str, str]) -> tags.ParsedTags:
    """Tags typed above the quote win over the ones kept in the quote; text is the reply's."""
    typed = tags.parse_tags(mail.reply, labels)
    kept = tags.parse_tags(mail.quoted, labels)
    return tags.ParsedTags(values={**kept.values, **typed.values}, text=typed.text)


def _address(value) -> str:
    return parseaddr(str(value or ""))[1].strip().lower()


def _addresses(message: EmailMessage, *names: str) -> tuple[str, ...]:
    values = [str(v) for name in names for v in (message.get_all(name) or [])]
    return tuple(addr.lower() for _, addr in getaddresses(values) if addr)


def _return_path(message: EmailMessage, envelope_from: str | None) -> str | None:
    if envelope_from is not None:
        return "" if envelope_from.strip() in ("", "<>") else envelope_from.strip("<> ").lower()
    header = message.get("Return-Path")
    if header is None:
        return None
    return "" if str(header).strip() in ("", "<>") else _address(header)


def auto_reply_reason(message: EmailMessage, return_path: str | None, sender: str) -> str | None:
    """Why a mail must not be answered or applied automatically (RFC 3834 and common usage)."""
    auto = str(message.get("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"auto-reply (Auto-Submitted: {auto})"
    precedence = str(message.get("Precedence") or "").strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return f"auto-reply (Precedence: {precedence})"
    for name in ("X-Autoreply", "X-Autorespond"):
        if message.get(name) is not None:
            return f"auto-reply ({name})"
    if return_path == "":
        return "auto-reply (null return path <>)"
    for address in (return_path or "", sender):
        if address.partition("@")[0] in DAEMON_LOCAL_PARTS:
            return f"auto-reply (from {address})"
    return None


def _soap_version(body: bytes, kind: str) -> str | None:
    if kind == "application/soap+xml":
        return "1.2"
    head = body[:4096]
    if not head.lstrip().startswith(b"<") or not ENVELOPE_HINT.search(head):
        return None
    if SOAP_12.encode() in head:
        return "1.2"
    return "1.1" if SOAP_11.encode() in head else None


def find_soap(message: EmailMessage) -> SoapPart | None:
    """A SOAP envelope sent as the whole body or as an application/soap+xml (or XML) part."""
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if kind not in SOAP_TYPES and kind != "text/plain":
            continue
        body = part.get_payload(decode=True) or b""
        version = _soap_version(body, kind)
        if version is None:
            continue
        content_type = "application/soap+xml" if version == "1.2" else "text/xml"
        charset = part.get_content_charset() or "utf-8"
        return SoapPart(body=body, content_type=f"{content_type}; charset={charset}",
                        as_attachment=part is not message)
    return None


def identity_key(raw: bytes) -> str | None:
    """What makes two copies of a mail the same mail: its Message-ID and its sender (From),
    as one key of 64 hex digits; None for a mail without a Message-ID. Intake computes it
    before the sender gets its 250, so only the header block is read, as written (compat32:
    a tenth of the modern policy's cost; the key only has to be the same for the same
    bytes, whichever intake brought them)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
    message_id = "".join(str(headers.get("Message-ID") or "").split())[:255]
    if not message_id:
        return None
    sender = parseaddr(str(headers.get("From") or ""))[1].strip().lower()
    key = f"{message_id}\n{sender}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(key).hexdigest()


def message_id_of(message: EmailMessage, raw: bytes) -> str:
    value = str(message.get("Message-ID") or "").strip()
    if value:
        return value[:255]
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@liaison.no-message-id>"


def parse_message(raw: bytes, envelope_from: str | None = None) -> ParsedMail:
    """Parses raw RFC 5322 bytes; never raises on odd mail (defects are tolerated)."""
    message = BytesParser(policy=POLICY).parsebytes(raw)
    sender = _address(message.get("From"))
    return_path = _return_path(message, envelope_from)
    text = body_text(message)
    reply, quoted = split_reply(text)
    reply_to = _addresses(message, "Reply-To")
    return ParsedMail(
        message_id=message_id_of(message, raw), from_addr=sender,
        from_header=str(message.get("From") or ""), to_addrs=_addresses(message, "To", "Cc"),
        to_header=", ".join(str(v) for v in (message.get_all("To") or [])
                            + (message.get_all("Cc") or [])),
        reply_to=reply_to[0] if reply_to else None,
        subject=str(message.get("Subject") or "").strip(), text=text, reply=reply,
        quoted=quoted, return_path=return_path,
        auto_reason=auto_reply_reason(message, return_path, sender),
        loop_header=str(message.get("X-Loop") or "").strip().lower(), soap=find_soap(message))
