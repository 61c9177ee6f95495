"""The spyne definition of the WorkflowService: types, operations, and their error mapping.

Each operation is thin: it takes the caller (authenticated before spyne runs, see
`endpoint`), calls one engine use case, and returns its result. Exceptions are mapped to
faults once, in `LiaisonApplication.call_wrapper`; spyne's own faults (schema validation,
unknown operation) are rewritten to `InvalidInput` by `_normalize_spyne_fault`.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from http import HTTPStatus

from spyne import Application, ComplexModel, ServiceBase, rpc
from spyne.model.fault import Fault
from spyne.model.primitive import Boolean, DateTime, Integer32, Unicode
from spyne.protocol.soap import Soap11, Soap12

from engine.services import queries
from engine.services.inbound import (
    Inbound,
    acknowledge_external,
    reassign_external,
    update_external,
)
from engine.services.provider_tickets import NewTicket, create_external_ticket
from webservice.faults import SoapVersion, fault_for, http_status

log = logging.getLogger(__name__)

NAMESPACE = "urn:liaison:workflow"
SERVICE_NAME = "WorkflowService"
RequiredInt = Integer32(min_occurs=1, nillable=False)
RequiredText = Unicode(min_occurs=1, nillable=False)
OptionalText = Unicode(min_occurs=0)


class ExternalEventResult(ComplexModel):
    __namespace__ = NAMESPACE
    _type_info = [("taskId", RequiredInt), ("externalReference", RequiredText),
                  ("requestType", RequiredText), ("status", RequiredText)]


class WorkflowTask(ComplexModel):
    __namespace__ = NAMESPACE
    _type_info = [("taskId", RequiredInt), ("ticketId", RequiredInt), ("title", RequiredText),
                  ("description", OptionalText), ("group", OptionalText),
                  ("status", RequiredText), ("externalReference", OptionalText),
                  ("solution", OptionalText), ("solutionPending", Boolean(min_occurs=1, nillable=False)),
                  ("priority", OptionalText), ("customer", OptionalText),
                  ("createdAt", DateTime(min_occurs=0)), ("updatedAt", DateTime(min_occurs=0))]


def _named(operation: str) -> dict:
    """Element names as a .NET client expects: X, XResponse, XResult."""
    return {"_operation_name": operation, "_out_message_name": operation + "Response",
            "_out_variable_name": operation + "Result"}


class LiaisonFault(Fault):
    """A fault produced by our mapping; `_normalize_spyne_fault` leaves it alone."""


def _channel(environ) -> str:
    # SOAP by e-mail runs this same service and says so (a client cannot set this key:
    # request headers arrive as HTTP_* keys).
    return environ.get("liaison.channel", "soap")


def _caller(ctx, request_id: str | None = None):
    """The core and the caller, its login confirmed and nonce stored (operations other than
    the inbound events, which do both in the event's own transaction: see `_event`)."""
    environ = ctx.transport.req_env
    provider = environ["liaison.caller"].confirmed()
    return environ["liaison.core"], Inbound(provider=provider, channel=_channel(environ),
                                            request_id=request_id or None)


def _event_result(result: dict) -> ExternalEventResult:
    return ExternalEventResult(**result)


def _event(ctx, use_case, *args, request_id: str | None) -> ExternalEventResult:
    """Runs an inbound use case for the caller (auth.Caller.run_event)."""
    environ = ctx.transport.req_env
    return _event_result(environ["liaison.caller"].run_event(
        use_case, *args, channel=_channel(environ), request_id=request_id or None))


def _task(view: dict) -> WorkflowTask:
    def when(value):
        if not value:
            return None
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops it

    return WorkflowTask(
        taskId=view["id"], ticketId=view["ticket_id"], title=view["title"],
        description=view["description"], group=view["group"], status=view["status"],
        externalReference=view["external_reference"], solution=view["solution"],
        solutionPending=bool(view["solution_pending"]), priority=view["priority"],
        customer=view["customer"], createdAt=when(view["created_at"]),
        updatedAt=when(view["updated_at"]))


class WorkflowService(ServiceBase):
    @rpc(RequiredInt, RequiredText, OptionalText, _returns=ExternalEventResult,
         _args=("taskId", "externalReference", "requestId"),
         **_named("ProcessInstanceTaskExternalAcknowledgement"))
    def acknowledge(ctx, task_id, external_reference, request_id):  # noqa: N805 - spyne passes its context
        """The provider gives its ticket number for the task (Acknowledgement/In)."""
        return _event(ctx, acknowledge_external, task_id, external_reference,
                      request_id=request_id)

    @rpc(RequiredInt, RequiredText, OptionalText, OptionalText, _returns=ExternalEventResult,
         _args=("taskId", "message", "externalReference", "requestId"),
         **_named("ProcessInstanceTaskExternalUpdateMessage"))
    def update(ctx, task_id, message, external_reference, request_id):  # noqa: N805 - spyne passes its context
        """The provider sends update text about the task (Update/In)."""
        return _event(ctx, update_external, task_id, message, external_reference,
                      request_id=request_id)

    @rpc(RequiredInt, OptionalText, OptionalText, OptionalText, OptionalText,
         _returns=ExternalEventResult,
         _args=("taskId", "solution", "message", "externalReference", "requestId"),
         **_named("ProcessInstanceTaskExternalReassignment"))
    def reassign(ctx, task_id, solution, message, external_reference, request_id):  # noqa: N805 - spyne passes its context
        """The provider hands the task back, with or without a solution (Reassigned/In)."""
        return _event(ctx, reassign_external, task_id, solution, message, external_reference,
                      request_id=request_id)

    @rpc(RequiredText, RequiredText, OptionalText, OptionalText, OptionalText, OptionalText,
         _returns=ExternalEventResult,
         _args=("externalReference", "title", "description", "site", "siteName", "device"),
         **_named("CreateExternalTicket"))
    def create_ticket(ctx, external_reference, title, description, site, site_name, device):  # noqa: N805, E501 - spyne passes its context
        """The provider opened a ticket (New Ticket/In): a ticket and a task in the provider's
        inbound group, for the customer linked to the site. taskId is 0 while the provider's
        inbound is not enabled: the ticket is kept and opened once it is."""
        core, source = _caller(ctx)
        ticket = NewTicket(reference=external_reference, title=title,
                           description=description or "", site=site, site_name=site_name,
                           device=device)
        return _event_result(core.run(create_external_ticket, source.provider, ticket,
                                      source.channel))

    @rpc(RequiredInt, _returns=WorkflowTask, _args=("taskId",),
         **_named("GetProcessInstanceTask"))
    def get_task(ctx, task_id):  # noqa: N805 - spyne passes its context
        """The task's current state, for a task held by one of the provider's groups."""
        core, source = _caller(ctx)
        return _task(core.run(queries.provider_task, task_id, source.provider))


class LiaisonApplication(Application):
    def call_wrapper(self, ctx):
        try:
            return super().call_wrapper(ctx)
        except Fault:
            raise
        except Exception as exc:
            code, text = fault_for(exc)
            raise LiaisonFault(code, text) from None


_SCHEMA_PREFIX = re.compile(r"^.*?:\d+:\d+:ERROR:\w+:\w+: ")
_NAMESPACE_IN_BRACES = re.compile(r"\{[^}]*\}")


def _clean(text) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = _NAMESPACE_IN_BRACES.sub("", _SCHEMA_PREFIX.sub("", str(text)))
    return text[:300]


def _normalize_spyne_fault(ctx) -> None:
    """spyne's own faults (invalid values, unknown operations) in the contract's shape."""
    error = ctx.out_error or ctx.in_error
    if error is None or isinstance(error, LiaisonFault):
        return
    if isinstance(error, Fault) and str(error.faultcode).startswith("Client"):
        fault = LiaisonFault("Client", f"InvalidInput: {_clean(error.faultstring)}")
    else:
        fault = LiaisonFault(*fault_for(error))
    ctx.out_error = fault
    if ctx.in_error is not None:
        ctx.in_error = fault


class _Soap11(Soap11):
    soap_env = "soap"  # faults read `soap:Client` / `soap:Server`, as CONTRACT §4 writes them


class _Soap12(Soap12):
    soap_env = "soap"  # `soap:Sender` / `soap:Receiver`

    def fault_to_http_response_code(self, fault):
        status = http_status(SoapVersion.SOAP12, str(fault.faultcode))
        return f"{status} {HTTPStatus(status).phrase}"


def build_application(version: SoapVersion) -> Application:
    """One spyne application per SOAP version; both describe the same operations."""
    protocol = _Soap11 if version is SoapVersion.SOAP11 else _Soap12
    app = LiaisonApplication([WorkflowService], tns=NAMESPACE, name=SERVICE_NAME,
                             in_protocol=protocol(validator="lxml"), out_protocol=protocol())
    # the envelope's prefix is `soap` (as .asmx services write it), for both versions
    nsmap = app.interface.nsmap
    nsmap.pop("soap11env" if version is SoapVersion.SOAP11 else "soap12env", None)
    nsmap["soap"] = version.namespace
    app.event_manager.add_listener("method_exception_object", _normalize_spyne_fault)
    return app
