"""Mounts the WorkflowService into the Flask app, at its path matched case-insensitively.

`create_app()` calls `mount_soap(app, core)`, so `liaison serve` serves web, REST and SOAP
from one process.
"""

from __future__ import annotations

import logging

from webservice.endpoint import WorkflowEndpoint

SOAP_PATH = "/Workflow/WebService/WorkflowService.asmx"
SPYNE_LOGGERS = (
    "spyne", "spyne.application", "spyne.application.client", "spyne.application.server",
    "spyne.server", "spyne.server.wsgi", "spyne.server._base", "spyne.protocol.xml",
    "spyne.protocol.xml.invalid", "spyne.protocol.soap.soap11",
    "spyne.protocol.soap.soap11.invalid", "spyne.protocol.soap.soap12",
    "spyne.protocol.soap.soap12.invalid", "spyne.interface.wsdl.wsdl11",
)


class _WithoutPayload(logging.Filter):
    """Keeps that something happened, drops what may quote a request (args, traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"spyne {record.levelname.lower()} in {record.name} (details withheld)"
        record.args, record.exc_info, record.exc_text, record.stack_info = (), None, None, None
        return True


def quiet_spyne_logging() -> None:
    """spyne logs whole requests (bad ones at error level) and a traceback for each client
    fault; our own code logs what matters, so spyne speaks only when critical, and briefly."""
    for name in SPYNE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL)
        if not any(isinstance(f, _WithoutPayload) for f in logger.filters):
            logger.addFilter(_WithoutPayload())


def no_forced_garbage_collection() -> None:
    """spyne runs gc.collect() after a request, at most once a second, to release uploaded
    files promptly. We take no uploads, and a full collection in a large process is a pause
    of up to a hundred milliseconds for whichever request meets it: it shows in p99."""
    import spyne.const

    spyne.const.MIN_GC_INTERVAL = float("inf")


class CaseInsensitiveMount:
    """Sends requests for `path` (any case, optional trailing slash) to `endpoint`."""

    def __init__(self, app, path: str, endpoint) -> None:
        self.app, self.endpoint, self.path = app, endpoint, path.lower().rstrip("/")

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") or "").lower().rstrip("/") == self.path:
            return self.endpoint(environ, start_response)
        return self.app(environ, start_response)


def wire_soap_by_mail(core) -> None:
    """Gives the engine's mail processing the SOAP service, for SOAP envelopes sent by mail."""
    from engine.adapters.mail_soap import WsgiSoapEndpoint

    quiet_spyne_logging()
    core.soap_mail_endpoint = WsgiSoapEndpoint(WorkflowEndpoint(core, SOAP_PATH), SOAP_PATH)


def mount_soap(app, core) -> WorkflowEndpoint:
    quiet_spyne_logging()
    no_forced_garbage_collection()
    wire_soap_by_mail(core)
    endpoint = WorkflowEndpoint(core, SOAP_PATH)
    app.wsgi_app = CaseInsensitiveMount(app.wsgi_app, SOAP_PATH, endpoint)
    app.extensions["liaison.soap"] = endpoint
    return endpoint
