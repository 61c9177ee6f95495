"""The WSGI application at the service's path: help pages and WSDL on GET, calls on POST.

A call goes guard → WS-Security → spyne (the application of the request's SOAP version),
and every refusal on the way is a SOAP fault in that version.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import parse_qsl

from spyne.server.wsgi import WsgiApplication

from webservice import guard
from webservice.auth import ProviderAuthenticator
from webservice.faults import SoapVersion, fault_response
from webservice.pages import HelpPages
from webservice.service import NAMESPACE, SERVICE_NAME, WorkflowService, build_application
from webservice.wsdl import build_wsdl
from webservice.wssecurity import read_username_token

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
PAGE_HEADERS = [("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")]


def _respond(start_response, status: str, content_type: str, body: bytes, head: bool = False,
             extra: tuple = ()) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            *PAGE_HEADERS, *extra])
    return [] if head else [body]


class WorkflowEndpoint:
    """Everything is built once here, from the configured public URL."""

    def __init__(self, core, path: str) -> None:
        self.core = core
        self.max_body = core.settings.soap_max_body
        address = core.settings.public_url.rstrip("/") + path
        self.spyne = {version: WsgiApplication(build_application(version),
                                               max_content_length=self.max_body + 1)
                      for version in SoapVersion}
        self.wsdl = build_wsdl(self.spyne[SoapVersion.SOAP11], address)
        self.pages = HelpPages(WorkflowService, SERVICE_NAME, NAMESPACE, address)
        self.authenticator = ProviderAuthenticator(core)

    def __call__(self, environ, start_response):
        method = (environ.get("REQUEST_METHOD") or "GET").upper()
        if method == "POST":
            return self.call(environ, start_response)
        if method in ("GET", "HEAD"):
            return self.describe(environ, start_response, head=method == "HEAD")
        return _respond(start_response, "405 Method Not Allowed", "text/plain; charset=utf-8",
                        b"Use POST for SOAP calls, GET for the WSDL and help pages.\n",
                        extra=(("Allow", "GET, HEAD, POST"),))

    def describe(self, environ, start_response, head: bool = False):
        query = {k.lower(): v for k, v in parse_qsl(environ.get("QUERY_STRING", ""),
                                                    keep_blank_values=True)}
        if "wsdl" in query:
            return _respond(start_response, "200 OK", "text/xml; charset=utf-8", self.wsdl, head)
        if "op" in query:
            page = self.pages.operation(query["op"])
            if page is not None:
                return _respond(start_response, "200 OK", HTML, page, head)
            return _respond(start_response, "404 Not Found", HTML, self.pages.listing(), head)
        return _respond(start_response, "200 OK", HTML, self.pages.listing(), head)

    def call(self, environ, start_response):
        try:
            envelope = guard.read_envelope(environ, self.max_body)
        except guard.Refused as refused:
            return fault_response(refused.version, refused.error, start_response)
        try:
            token = read_username_token(envelope.root, envelope.version.namespace)
            caller = self.authenticator.authenticate(token, environ.get("REMOTE_ADDR") or "?")
        except Exception as exc:  # refused, or our failure: a fault either way, never a page
            return fault_response(envelope.version, exc, start_response)
        inner = {**environ, "wsgi.input": io.BytesIO(envelope.body),
                 "CONTENT_LENGTH": str(len(envelope.body)), "CONTENT_TYPE": envelope.content_type,
                 "liaison.core": self.core, "liaison.caller": caller}
        try:
            return self._spyne(envelope.version, inner, start_response)
        finally:
            self._settle(caller)

    @staticmethod
    def _settle(caller) -> None:
        try:
            caller.settle()
        except Exception:  # the answer is given; a failure here must not replace it
            log.exception("storing the WS-Security nonce after the answer failed")

    def _spyne(self, version: SoapVersion, environ, start_response):
        started = []

        def tracking_start_response(*args):
            started.append(True)
            return start_response(*args)

        try:
            return self.spyne[version](environ, tracking_start_response)
        except Exception as exc:  # spyne failed outside its own error handling
            if started:
                raise
            return fault_response(version, exc, start_response)
