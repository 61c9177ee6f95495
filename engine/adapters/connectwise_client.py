"""HTTP client for the ConnectWise Manage REST API (`…/apis/3.0`), one `requests.Session` per
provider (connections reused), with connect/read timeouts.

Every failure becomes an `ApiError` (a `DeliveryError`) whose message is readable and safe to
show: ConnectWise's `{code, message, errors[]}` bodies are spelled out, and the private key
never appears in a message (it only ever travels in the Authorization header).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from engine.exceptions import DeliveryError

MAX_PAGE = 1000  # ConnectWise's largest pageSize
MAX_TEXT = 400
NOT_RETRYABLE = {400, 401, 403, 404, 405, 409, 410, 422}


@dataclass(frozen=True)
class Connection:
    """Where and as whom to call ConnectWise. The private key stays out of repr()."""

    url: str
    company_id: str
    public_key: str
    private_key: str = field(repr=False)
    client_id: str

    @property
    def root(self) -> str:
        return self.url.rstrip("/")

    def headers(self) -> dict[str, str]:
        login = f"{self.company_id}+{self.public_key}:{self.private_key}".encode()
        return {"Authorization": "Basic " + base64.b64encode(login).decode("ascii"),
                "clientId": self.client_id, "Content-Type": "application/json",
                "Accept": "application/json"}

    def fingerprint(self) -> str:
        joined = "\0".join((self.url, self.company_id, self.public_key, self.private_key,
                            self.client_id))
        return hashlib.sha256(joined.encode()).hexdigest()


class ApiError(DeliveryError):
    """A ConnectWise call failed. `status` is the HTTP status (0: no answer); `unknown_outcome`
    says the request may have been carried out although no answer came back."""

    def __init__(self, message: str, status: int = 0, *, retryable: bool = True,
                 retry_after: float | None = None, unknown_outcome: bool = False,
                 api_code: str | None = None) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.status = status
        self.unknown_outcome = unknown_outcome
        self.api_code = api_code


def _short(text: object) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def describe_body(body: object) -> tuple[str | None, str]:
    """(code, readable text) of a ConnectWise error body; other bodies are shortened."""
    if not isinstance(body, dict):
        return None, _short(body) if body else ""
    code, text = body.get("code"), str(body.get("message") or "")
    details = []
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            where = error.get("field") or error.get("resource")
            details.append(f"{where}: {error.get('message')}" if where else
                           str(error.get("message")))
    if details:
        text = f"{text} ({'; '.join(details)})" if text else "; ".join(details)
    return code, _short(text)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _reason(status: int) -> str:
    return {401: "wrong company id, public or private key (authentication failed)",
            403: "the API member's security role does not allow this",
            404: "not found", 429: "rate limited"}.get(status, "")


def error_for(response: requests.Response, method: str, path: str) -> ApiError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = response.text
    code, text = describe_body(body)
    reason = _reason(status)
    parts = [f"ConnectWise answered HTTP {status} to {method} {path}"]
    if reason:
        parts.append(reason)
    if code or text:
        parts.append(f"{code}: {text}" if code else text)
    message = " — ".join(parts)
    retry_after = retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
    unknown = method != "GET" and (status >= 500 or status == 408)
    return ApiError(message, status, retryable=status not in NOT_RETRYABLE,
                    retry_after=retry_after, unknown_outcome=unknown, api_code=code)


def _transport_error(exc: requests.RequestException, method: str, path: str,
                     read_timeout: float) -> ApiError:
    where = f"{method} {path}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ApiError(f"ConnectWise unreachable ({where}): no connection within the timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(
            _urllib3_reason(exc), ReadTimeoutError):
        return ApiError(f"ConnectWise did not answer {where} within {read_timeout:g} s",
                        unknown_outcome=method != "GET")
    if isinstance(exc, requests.exceptions.SSLError):
        return ApiError(f"TLS failed for {where}: {_short(exc.__class__.__name__)} "
                        f"(certificate or protocol problem)", unknown_outcome=False)
    if isinstance(exc, requests.exceptions.ConnectionError):
        # Refused, unresolvable, or dropped after sending: the request may have arrived.
        return ApiError(f"ConnectWise unreachable ({where}): {_short(_root_cause(exc))}",
                        unknown_outcome=method != "GET")
    # Anything else (an invalid header, URL, …): requests may quote our headers: never shown.
    return ApiError(f"request {where} could not be sent ({exc.__class__.__name__})",
                    retryable=False)


def _urllib3_reason(exc: requests.RequestException) -> object:
    first = exc.args[0] if exc.args else None
    return getattr(first, "reason", None)


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    return text.split(": ", 1)[-1] if "object at 0x" in text else text


def new_session(pool_size: int = 4, connect_retries: int = 2) -> requests.Session:
    """Connections are reused; only attempts that never reached the server are retried here
    (a POST whose answer was lost is the outbox's decision, not urllib3's)."""
    retry = Retry(total=connect_retries, connect=connect_retries, read=0, status=0, other=0,
                  redirect=0, backoff_factor=0.2, allowed_methods=None,
                  respect_retry_after_header=False, raise_on_status=False)
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials slipped in from the environment
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=retry)
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


class ConnectWiseClient:
    """The calls liaison makes; paths are relative to the connection's API root."""

    def __init__(self, connection: Connection, session: requests.Session | None = None,
                 timeouts: tuple[float, float] = (5.0, 30.0)) -> None:
        self.connection = connection
        self.session = session or new_session()
        self.timeouts = timeouts
        self._headers = connection.headers()

    # -- HTTP
    def request(self, method: str, path: str, *, params: dict | None = None,
                body: object = None) -> requests.Response:
        try:
            response = self.session.request(method, self.connection.root + path, params=params,
                                            json=body, headers=self._headers,
                                            timeout=self.timeouts, allow_redirects=False)
        except requests.RequestException as exc:
            raise _transport_error(exc, method, path, self.timeouts[1]) from None
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "?")
            raise ApiError(f"ConnectWise redirected {method} {path} to {_short(location)}: "
                           f"check the connection URL", response.status_code, retryable=False)
        if response.status_code >= 400:
            raise error_for(response, method, path)
        return response

    def _json(self, method: str, path: str, **options) -> object:
        response = self.request(method, path, **options)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"ConnectWise answered {method} {path} with no JSON "
                           f"({_short(response.headers.get('Content-Type', 'no type'))}): "
                           f"check the connection URL", response.status_code,
                           retryable=False) from None

    def get(self, path: str, **params) -> object:
        return self._json("GET", path, params=params or None)

    def post(self, path: str, body: dict) -> dict:
        return self._json("POST", path, body=body)

    def patch(self, path: str, operations: list[dict]) -> dict:
        return self._json("PATCH", path, body=operations)

    def get_all(self, path: str, *, conditions: str | None = None, fields: str | None = None,
                order_by: str | None = None, page_size: int = MAX_PAGE,
                limit: int = 20_000) -> list[dict]:
        """Every record of a list (bare JSON arrays), page by page, up to `limit`."""
        page_size = max(1, min(page_size, MAX_PAGE))
        params = {k: v for k, v in (("conditions", conditions), ("fields", fields),
                                    ("orderBy", order_by)) if v}
        records: list[dict] = []
        page = 1
        while len(records) < limit:
            batch = self.get(path, **params, page=page, pageSize=page_size)
            if not isinstance(batch, list):
                raise ApiError(f"ConnectWise answered GET {path} with no list", retryable=False)
            records.extend(batch)
            if len(batch) < page_size:
                break
            page += 1
        return records[:limit]

    # -- what the channel and the look-ups use
    def system_info(self) -> dict:
        info = self.get("/system/info")
        if not isinstance(info, dict):
            raise ApiError("ConnectWise answered GET /system/info with no object: check the "
                           "connection URL", retryable=False)
        return info

    def create_ticket(self, ticket: dict) -> dict:
        return self.post("/service/tickets", ticket)

    def tickets_by_xref(self, reference: str) -> list[dict]:
        return self.get_all("/service/tickets", conditions=f"externalXRef={quote(reference)}",
                            fields="id,summary,externalXRef,closedFlag", limit=10)

    def add_note(self, ticket_id: int, note: dict) -> dict:
        return self.post(f"/service/tickets/{int(ticket_id)}/notes", note)

    def set_ticket_status(self, ticket_id: int, status_name: str) -> dict:
        return self.patch(f"/service/tickets/{int(ticket_id)}",
                          [{"op": "replace", "path": "status/name", "value": status_name}])


def quote(value: str) -> str:
    """A string literal in a `conditions` query."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class ClientPool:
    """One client (and session) per provider, rebuilt when its connection changes. A client is
    reused without reading the connection again only by a caller that read the connection's
    version (`stamp`, its row's `updated_at`) in a statement of its own (the worker's claim):
    a key changed by another process is never used past that read. A change made in this
    process is seen at once (`forget`)."""

    def __init__(self, timeouts: tuple[float, float] = (5.0, 30.0)) -> None:
        self.timeouts = timeouts
        self._clients: dict[int, tuple[str, ConnectWiseClient, object]] = {}
        self._lock = threading.Lock()

    def client(self, provider_id: int, connection: Connection,
               stamp: object = None) -> ConnectWiseClient:
        fingerprint = connection.fingerprint()
        with self._lock:
            known = self._clients.get(provider_id)
            if known is not None and known[0] == fingerprint:
                self._clients[provider_id] = (fingerprint, known[1], stamp)
                return known[1]
            if known is not None:
                known[1].session.close()
            client = ConnectWiseClient(connection, timeouts=self.timeouts)
            self._clients[provider_id] = (fingerprint, client, stamp)
            return client

    def current(self, provider_id: int, stamp: object) -> ConnectWiseClient | None:
        """The provider's client if it was made from the connection of version `stamp`."""
        if stamp is None:
            return None
        with self._lock:
            known = self._clients.get(provider_id)
        return known[1] if known is not None and known[2] == stamp else None

    def forget(self, provider_id: int) -> None:
        with self._lock:
            known = self._clients.pop(provider_id, None)
        if known is not None:
            known[1].session.close()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for _, client, _ in clients:
            client.session.close()
