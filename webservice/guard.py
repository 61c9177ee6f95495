"""What stands between the network and spyne: a request is read, capped and parsed here.

Refused before spyne sees it, each as a SOAP Fault `Client` / `InvalidInput: …` in the
request's SOAP version: bodies over the size cap, empty bodies, non-XML, DTDs and entity
declarations (XXE, billion laughs), documents that are not a SOAP envelope, and a SOAP
version that contradicts the Content-Type. spyne then parses a body known to be safe.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

from lxml import etree

from engine.exceptions import InvalidInput
from webservice.faults import SoapVersion

_DOCTYPE_MARKS = tuple("<!DOCTYPE".encode(enc) for enc in ("ascii", "utf-16-le", "utf-16-be"))
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_local = threading.local()


class Refused(Exception):
    """A request refused by the guard; answered with `error` as a fault in `version`."""

    def __init__(self, version: SoapVersion, error: Exception) -> None:
        super().__init__(str(error))
        self.version = version
        self.error = error


@dataclass(frozen=True)
class Envelope:
    version: SoapVersion
    root: etree._Element
    body: bytes  # what spyne parses again: UTF-8 when the request named another charset
    content_type: str  # for spyne: names UTF-8 when the body was re-encoded


def _parser() -> etree.XMLParser:
    # lxml parsers must not be shared between threads.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, collect_ids=False, remove_comments=True)
    return parser


def version_for(content_type: str) -> SoapVersion | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/soap+xml":
        return SoapVersion.SOAP12
    if media in ("text/xml", "application/xml"):
        return SoapVersion.SOAP11
    return None


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _read_body(environ, max_bytes: int) -> bytes:
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if length and not length.isdigit():
        raise InvalidInput("the Content-Length header is not a number")
    if length and int(length) > max_bytes:
        raise InvalidInput(f"the request body exceeds {max_bytes} bytes")
    stream = environ["wsgi.input"]
    body = stream.read(int(length)) if length else stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise InvalidInput(f"the request body exceeds {max_bytes} bytes")
    if not body.strip():
        raise InvalidInput("the request body is empty; expected a SOAP envelope")
    return body


def _recode(body: bytes, charset: str | None) -> bytes:
    """Applies a Content-Type charset, so the guard and spyne read the same characters."""
    if charset is None:
        return body
    try:
        text = body.decode(codecs.lookup(charset).name)
    except (LookupError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the request body is not valid {charset[:40]!r} text") from exc
    return _XML_DECLARATION.sub("", text.lstrip("\ufeff"), count=1).encode("utf-8")


def _parse(body: bytes) -> etree._Element:
    if any(mark in body for mark in _DOCTYPE_MARKS):
        raise InvalidInput("DTDs and entity declarations are not accepted")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"the request body is not well-formed XML ({exc.msg})") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InvalidInput("DTDs and entity declarations are not accepted")
    return root


def _envelope_version(root: etree._Element) -> SoapVersion | None:
    for version in SoapVersion:
        if root.tag == f"{{{version.namespace}}}Envelope":
            return version
    return None


def read_envelope(environ, max_bytes: int) -> Envelope:
    """Reads and checks a SOAP request; raises `Refused` with the version to answer in."""
    content_type = environ.get("CONTENT_TYPE") or ""
    expected = version_for(content_type)
    answer_in = expected or SoapVersion.SOAP11
    charset = _charset(content_type)
    try:
        body = _recode(_read_body(environ, max_bytes), charset)
        root = _parse(body)
    except InvalidInput as exc:
        raise Refused(answer_in, exc) from None
    found = _envelope_version(root)
    if found is None:
        raise Refused(answer_in, InvalidInput("the request is not a SOAP 1.1 or 1.2 Envelope"))
    if expected is None:
        raise Refused(found, InvalidInput(
            "Content-Type must be text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)"))
    if found is not expected:
        raise Refused(found, InvalidInput(
            f"a SOAP {found} envelope needs Content-Type {found.content_type.split(';')[0]}"))
    if charset is not None:
        content_type = content_type.split(";", 1)[0] + "; charset=utf-8"
    return Envelope(found, root, body, content_type)
