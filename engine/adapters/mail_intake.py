"""Inbound mail as plain values: the standard library's `email` (modern policy), the tags,
the signs of automated mail, the conditions of automated rules, and SOAP found in a mail.

What a person wrote is the text above the quote of our mail; the tags usually sit in that
quote (a reply keeps them) or are typed above it. HTML-only mail is reduced to text first,
with `<blockquote>` turned into `>` lines so one quote detector serves every client.
Regular expressions of rules run in a helper process, so that a runaway one can be stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import select
import subprocess
import sys
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Protocol

from engine.domain import tags

AUTO_PRECEDENCE = {"bulk", "junk", "list"}
DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster"}
SOAP_TYPES = {"application/soap+xml": "1.2", "text/xml": "1.1", "application/xml": "1.1"}
SOAP_11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_12 = "http://www.w3.org/2003/05/soap-envelope"
# Only a hint that a part is SOAP; whether it is acceptable is the SOAP service's guard's call.
ENVELOPE_HINT = re.compile(rb"<([\w.-]{1,40}:)?Envelope[\s>]")

# Where a client starts quoting the mail it answers (Gmail, Apple Mail, Thunderbird, Outlook).
QUOTE_STARTS = [re.compile(p, re.IGNORECASE) for p in (
    r"^>",
    r"^On .{0,200}\bwrote:\s*$",
    r"^Am .{0,200}\bschrieb .{0,200}:\s*$",
    r"^Le .{0,200}\ba écrit\s*:\s*$",
    r"^-{2,}\s*Original Message\s*-{2,}\s*$",
    r"^_{10,}\s*$",
    r"^From:\s.+$",
)]
WRAPPED_ATTRIBUTION = re.compile(r"^On .{0,200}$", re.IGNORECASE)
BLOCK_TAGS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table",
              "ul", "ol", "pre", "hr", "blockquote"}
SKIP_TAGS = {"style", "script", "head", "title"}


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


class _TextFromHtml(HTMLParser):
    """HTML to text: blocks become lines, blockquotes become `>` lines, scripts vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.depth = 0  # blockquote nesting
        self.skipping = 0

    def _break(self, blank: bool = False) -> None:
        """Ends the current line; `blank` keeps an empty one (a <br> or an empty <p>)."""
        line = re.sub(r"[ \t\u00a0]+", " ", "".join(self.current)).strip()
        self.current = []
        prefix = "> " * self.depth
        if line:
            self.lines.append(prefix + line)
        elif blank and self.lines and self.lines[-1].strip("> "):
            self.lines.append(prefix.rstrip())

    def handle_starttag(self, tag, attrs) -> None:
        if tag in SKIP_TAGS:
            self.skipping += 1
        elif tag in BLOCK_TAGS:
            self._break(blank=tag == "br")
            self.depth += tag == "blockquote"

    def handle_endtag(self, tag) -> None:
        if tag in SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCK_TAGS:
            self._break(blank=tag == "p")
            self.depth = max(0, self.depth - (tag == "blockquote"))

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.current.append(data.replace("\r", "").replace("\n", " "))

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines).strip()


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else content.decode("utf-8", errors="replace")


def body_text(message: EmailMessage) -> str:
    """The plain-text body, or the HTML body reduced to text when there is no plain part."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = _content(part)
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content.replace("\r\n", "\n")


def _quote_start(lines: list[str]) -> int | None:
    for number, line in enumerate(lines):
        stripped = line.strip()
        if any(p.match(stripped) for p in QUOTE_STARTS):
            return number
        # Gmail wraps a long "On <date>, <name> <address> wrote:" over two lines.
        following = lines[number + 1].strip() if number + 1 < len(lines) else ""
        if WRAPPED_ATTRIBUTION.match(stripped) and following.lower().endswith("wrote:"):
            return number
    return None


def _unquote(lines: list[str]) -> str:
    return "\n".join(re.sub(r"^\s*(>\s?)+", "", line) for line in lines)


def _without_signature(text: str) -> str:
    head, sep, _ = text.partition("\n-- \n")
    return head if sep else text


def split_reply(text: str) -> tuple[str, str]:
    """(what the sender wrote, the quoted mail without quote markers)."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = _quote_start(lines)
    if start is None:
        return _without_signature(text).strip(), ""
    return _without_signature("\n".join(lines[:start])).strip(), _unquote(lines[start:]).strip()


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


def message_id_of(message: EmailMessage, raw: bytes) -> str:
    value = str(message.get("Message-ID") or "").strip()
    if value:
        return value[:255]
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@liaison.no-message-id>"


def parse_message(raw: bytes, envelope_from: str | None = None) -> ParsedMail:
    """Parses raw RFC 5322 bytes; never raises on odd mail (defects are tolerated)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
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


# -- automated e-mail rules: conditions and a time-bounded regular-expression search

RULE_FIELDS = ("from", "to", "subject", "body")
RULE_MATCHES = ("contains", "regex")
MATCH_LIMIT = 100_000  # characters of a field that a condition looks at
REGEX_TIMEOUT = 0.5  # seconds
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Condition:
    field: str
    match: str
    value: str


def field_value(mail: ParsedMail, field: str) -> str:
    values = {"from": mail.from_header or mail.from_addr, "to": mail.to_header,
              "subject": mail.subject, "body": mail.text}
    return values[field][:MATCH_LIMIT]


# The helper is a bare interpreter running only this (stdlib) code, so starting it never
# re-imports the application's main module, whatever embeds the engine.
_REGEX_HELPER = r"""
import json, re, sys
compiled = {}
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    pattern, text = json.loads(line)
    try:
        if pattern not in compiled:
            compiled[pattern] = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
        answer = "1" if compiled[pattern].search(text) else "0"
    except re.error:
        answer = "0"
    sys.stdout.write(answer + "\n"); sys.stdout.flush()
"""


class RegexGuard:
    """Searches with a time bound. Python's `re` cannot be interrupted, so searches run in a
    helper process that is killed and replaced when one overruns (catastrophic backtracking)."""

    def __init__(self, timeout: float = REGEX_TIMEOUT) -> None:
        import threading
        self.timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def _answer(self, timeout: float) -> str | None:
        """One line from the helper, or None when it does not come in time."""
        stream = self._process.stdout
        ready, _, _ = select.select([stream], [], [], timeout)
        return stream.readline().decode().strip() if ready else None

    def _ensure(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed code
                [sys.executable, "-I", "-c", _REGEX_HELPER], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, bufsize=0)
            # The time bound is for searches, not for starting Python: wait for the helper.
            if self._answer(STARTUP_TIMEOUT) != "ready":
                self.close()
                raise RuntimeError("the regular-expression helper process did not start")
        return self._process

    def search(self, pattern: str, text: str) -> bool | None:
        """True/False, or None when the search took longer than the time bound."""
        with self._lock:
            process = self._ensure()
            process.stdin.write(json.dumps([pattern, text]).encode() + b"\n")
            answer = self._answer(self.timeout)
            if answer in ("0", "1"):
                return answer == "1"
            self.close()
            return None

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            for stream in (self._process.stdin, self._process.stdout):
                stream.close()
        self._process = None


def condition_holds(condition: Condition, mail: ParsedMail, guard: RegexGuard) -> bool | None:
    """Case-insensitive; None when a regular expression overran its time bound."""
    text = field_value(mail, condition.field)
    if condition.match == "contains":
        return condition.value.casefold() in text.casefold()
    return guard.search(condition.value, text)


def compose_soap_reply(request: ParsedMail, body: bytes, content_type: str, own_address: str,
                       to: str, bcc: str | None) -> EmailMessage:
    """The SOAP response as mail, shaped like the request: the whole body, or an attachment.
    Marked auto-replied (RFC 3834) so that no well-behaved system answers it in turn."""
    from email.utils import formatdate, make_msgid
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


# -- SOAP by e-mail: the request answered in-process

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
