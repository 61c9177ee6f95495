"""The one mapping from the engine's exceptions to SOAP faults (CONTRACT §4).

Client faults carry the contract's code as the fault-string prefix (`TaskNotFound: …`).
A request that could not be applied *yet* (`Busy`, `ConcurrentUpdate`: other writers held
the task) is a Server fault with its code as the prefix, saying that repeating it with the
same requestId is safe; it is logged as a warning, without a traceback. Anything else is a
Server fault that says nothing about the cause, only an incident id that is logged with the
traceback.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from http import HTTPStatus

from lxml import etree

from engine.exceptions import (
    Busy,
    ConcurrentUpdate,
    InvalidInput,
    NotAuthenticated,
    NotAuthorized,
    ReferenceMismatch,
    TaskClosed,
    TaskNotFound,
)

log = logging.getLogger(__name__)

CLIENT_CODES = (TaskNotFound, NotAuthorized, InvalidInput, TaskClosed, ReferenceMismatch)
RETRY_CODES = (Busy, ConcurrentUpdate)
RETRY_ADVICE = "Retrying with the same requestId is safe."
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"


class SoapVersion(StrEnum):
    SOAP11 = "1.1"
    SOAP12 = "1.2"

    @property
    def namespace(self) -> str:
        return SOAP11_ENV if self is SoapVersion.SOAP11 else SOAP12_ENV

    @property
    def content_type(self) -> str:
        kind = "text/xml" if self is SoapVersion.SOAP11 else "application/soap+xml"
        return f"{kind}; charset=utf-8"


def fault_for(exc: BaseException) -> tuple[str, str]:
    """(`Client`|`Server`, fault string) for an exception raised while serving a request."""
    if isinstance(exc, NotAuthenticated):
        return "Client", f"{NotAuthorized.code}: {exc.message}"
    for cls in CLIENT_CODES:
        if isinstance(exc, cls):
            return "Client", f"{cls.code}: {exc.message}"
    for cls in RETRY_CODES:
        if isinstance(exc, cls):
            log.warning("SOAP request not applied (%s): %s", cls.code, exc.message)
            return "Server", f"{cls.code}: {exc.message}. {RETRY_ADVICE}"
    incident = uuid.uuid4().hex[:12]
    log.error("SOAP request failed, incident %s", incident, exc_info=exc)
    return "Server", f"Server: internal error (incident {incident})"


def http_status(version: SoapVersion, code: str) -> int:
    # SOAP 1.1 answers every fault with 500; SOAP 1.2's HTTP binding says 400 for Sender.
    return 400 if version is SoapVersion.SOAP12 and code == "Client" else 500


def fault_envelope(version: SoapVersion, code: str, text: str) -> bytes:
    """A complete fault envelope in the request's SOAP version."""
    ns = version.namespace
    prefix = "soap"  # as .asmx services write it, in both versions
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={prefix: ns})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{ns}}}Body"), f"{{{ns}}}Fault")
    if version is SoapVersion.SOAP11:
        etree.SubElement(fault, "faultcode").text = f"{prefix}:{code}"
        etree.SubElement(fault, "faultstring").text = text
    else:
        value = "Sender" if code == "Client" else "Receiver"
        etree.SubElement(etree.SubElement(fault, f"{{{ns}}}Code"), f"{{{ns}}}Value").text = \
            f"{prefix}:{value}"
        reason = etree.SubElement(etree.SubElement(fault, f"{{{ns}}}Reason"), f"{{{ns}}}Text")
        reason.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        reason.text = text
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def fault_response(version: SoapVersion, exc: BaseException, start_response) -> list[bytes]:
    """Answers a WSGI request with the fault for `exc`."""
    code, text = fault_for(exc)
    body = fault_envelope(version, code, text)
    status = http_status(version, code)
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", version.content_type), ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff")])
    return [body]
