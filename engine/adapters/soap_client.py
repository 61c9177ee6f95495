"""Outbound SOAP to providers (channel `soap`), behind the same Protocol as e-mail.

Requests follow the provider-side contract shipped as `webservice/provider.wsdl`; the file is
read locally, never fetched from the provider. Each request carries a `requestId` that the
contract obliges the provider to deduplicate: our exchange's delivery key
(`providers.delivery_key`), the same on every attempt and replay of the exchange, so a
delivery whose outcome is unknown (an answer that timed out, a dropped connection, a 5xx, a
worker killed before it recorded the answer) may safely be repeated by the outbox.
Within one delivery, requests retries only connections that never reached the provider.
Responses are parsed with DTDs, entities and external references forbidden.
"""

from __future__ import annotations

import threading
from importlib import resources
from urllib.parse import urlsplit

import requests
import zeep
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from zeep import exceptions as zeep_errors

from engine.adapters.providers import Delivery, OutboundRequest, ProviderInfo, delivery_key
from engine.exceptions import DeliveryError

PROVIDER_NAMESPACE = "urn:liaison:provider"
BINDING = f"{{{PROVIDER_NAMESPACE}}}ProviderServiceSoap"
OPERATIONS = {
    "Submit Request": "SubmitRequest",
    "Update": "SendUpdate",
    "Resolution Rejection": "RejectResolution",
    "Closed": "CloseTask",
}
REFUSED_CONTENT = (zeep_errors.DTDForbidden, zeep_errors.EntitiesForbidden,
                   zeep_errors.ExternalReferenceForbidden)
MAX_ERROR = 300


def provider_wsdl() -> str:
    return str(resources.files("webservice").joinpath("provider.wsdl"))


def _short(text: object) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR] + "…"


def _session(connect_retries: int) -> requests.Session:
    # connect=N: only attempts that never reached the provider. Reads, statuses and anything
    # else are never retried here (and urllib3 would not retry a POST's read anyway).
    retry = Retry(total=connect_retries, connect=connect_retries, read=0, status=0, other=0,
                  redirect=0, backoff_factor=0.2)
    session = requests.Session()
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=retry))
    return session


class _CheckedTransport(zeep.Transport):
    """Lets zeep read only answers that can be SOAP: a success, or a fault (400/500 + XML)."""

    def post(self, address, message, headers):
        response = super().post(address, message, headers)
        xml = "xml" in response.headers.get("Content-Type", "").lower()
        if not (200 <= response.status_code < 300 or (response.status_code in (400, 500) and xml)):
            raise zeep_errors.TransportError(response.reason or "", response.status_code)
        return response


def _fault_error(exc: zeep_errors.Fault, repeatable: bool) -> DeliveryError:
    code = str(exc.code or "")
    if not code:  # an error status whose XML body is no SOAP fault
        return DeliveryError(f"provider answered with no SOAP fault: {_short(exc.message)}",
                             repeatable)
    ours = any(word in code.lower() for word in ("client", "sender"))
    return DeliveryError(f"provider fault {code}: {_short(exc.message)}", retryable=not ours)


def _transport_error(exc: zeep_errors.TransportError, repeatable: bool) -> DeliveryError:
    # 4xx: our request is wrong and will stay wrong (except a timeout or a rate limit).
    status = exc.status_code or 0
    retryable = repeatable and not (400 <= status < 500 and status not in (408, 429))
    return DeliveryError(f"provider answered HTTP {status}: {_short(exc.message)}", retryable)


class SoapChannel:
    """Calls a provider's SOAP endpoint with zeep; see the module docstring for the rules."""

    name = "soap"

    def __init__(self, wsdl: str | None = None, operation_timeout: float = 30.0,
                 connect_timeout: float = 5.0, connect_retries: int = 2,
                 secret_key: str = "") -> None:
        self.wsdl = wsdl
        self.secret_key = secret_key
        self.timeouts = (connect_timeout, operation_timeout)
        self.connect_retries = connect_retries
        self._client: zeep.Client | None = None
        self._services: dict[str, object] = {}
        self._lock = threading.Lock()

    def render(self, provider: ProviderInfo, request: OutboundRequest) -> dict:
        url = provider.endpoint_url or ""
        if urlsplit(url).scheme not in ("http", "https"):
            raise DeliveryError(f"provider {provider.name} has no http(s) endpoint_url",
                                retryable=False)
        operation = OPERATIONS.get(request.request_type)
        if operation is None:
            raise DeliveryError(f"no SOAP operation for {request.request_type!r}", retryable=False)
        task = request.task
        arguments = {  # requestId: added at delivery, from the exchange
            "requestType": request.request_type,
            "taskId": task["id"], "ticketId": task["ticket_id"], "title": task["title"],
            "description": task.get("description") or None, "priority": task.get("priority"),
            "customer": task.get("customer"), "externalReference": task.get("external_reference"),
            "text": request.text or None,
        }
        return {"endpoint_url": url, "operation": operation, "arguments": arguments,
                "task_id": task["id"]}

    def deliver(self, message: dict, delivery: Delivery) -> dict:
        # A message rendered before keys came from the exchange keeps its own.
        request_id = message["arguments"].get("requestId") or \
            delivery_key(self.secret_key, delivery)
        arguments = {**message["arguments"], "requestId": request_id}
        repeatable = True  # the provider recognises a repetition by its requestId
        try:
            result = getattr(self._service(message["endpoint_url"]), message["operation"])(
                **arguments)
        except zeep_errors.Fault as exc:
            raise _fault_error(exc, repeatable) from None
        except REFUSED_CONTENT as exc:
            raise DeliveryError(f"provider response refused: {_short(exc)}", False) from None
        except zeep_errors.TransportError as exc:
            raise _transport_error(exc, repeatable) from None
        except requests.exceptions.ConnectionError as exc:
            # Includes connect timeouts: after urllib3's retries, the provider was not reached
            # or dropped the connection; either way the outbox may try again later.
            raise DeliveryError(f"provider unreachable: {_short(exc)}", repeatable) from None
        except requests.exceptions.Timeout:
            raise DeliveryError(f"provider did not answer within {self.timeouts[1]:g} s",
                                repeatable) from None
        except (zeep_errors.Error, ValueError) as exc:
            raise DeliveryError(f"provider response not understood: {_short(exc)}",
                                repeatable) from None
        return {"status": getattr(result, "status", None),
                "external_reference": getattr(result, "externalReference", None),
                "request_id": arguments.get("requestId")}

    def _service(self, endpoint_url: str):
        with self._lock:
            if self._client is None:
                settings = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True,
                                         forbid_entities=True, forbid_external=True)
                transport = _CheckedTransport(session=_session(self.connect_retries),
                                           timeout=self.timeouts[0],
                                           operation_timeout=self.timeouts)
                self._client = zeep.Client(self.wsdl or provider_wsdl(), transport=transport,
                                           settings=settings)
            service = self._services.get(endpoint_url)
            if service is None:
                service = self._services[endpoint_url] = self._client.create_service(
                    BINDING, endpoint_url)
            return service
