"""A simulated ConnectWise Manage REST API: `liaison simulate-psa --port P`, and in-process
for `make run`'s demo and the tests.

It serves the subset liaison uses under any prefix ending in `/apis/3.0` (e.g.
`http://127.0.0.1:P/v4_6_release/apis/3.0/service/tickets`), with ConnectWise's behaviour:
Basic auth `company+public:private` plus a `clientId` header (401 otherwise), bare JSON arrays
paged by `page`/`pageSize` (≤ 1000, a `Link` header for the next page), `conditions`, 201 on
create, 400 `InvalidObject` bodies naming fields, 404 `{"code": "ConnectWiseApi", "message":
"The endpoint does not exist."}` for unknown routes. Its whole state is at `…/_sim/state`.
Tests inject failures with `fail(…)` (before or after the change is made, with a delay, a
429 and `Retry-After`, …).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field

from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from webservice.psa_simulator import provider_side, records
from webservice.psa_simulator.conditions import ConditionError, parse
from webservice.psa_simulator.records import ApiFailure, display_name
from webservice.psa_simulator.state import State

API_ROOT = "/apis/3.0"
NO_ENDPOINT = {"code": "ConnectWiseApi", "message": "The endpoint does not exist."}
LISTS = {  # path -> (table, scope key taken from the URL)
    "/service/boards": ("boards", None), "/service/priorities": ("priorities", None),
    "/company/companies": ("companies", None), "/company/contacts": ("contacts", None),
    "/procurement/catalog": ("catalog", None), "/finance/agreements": ("agreements", None),
    "/service/tickets": ("tickets", None), "/company/configurations": ("configurations", None),
}
RULES = Map([
    Rule("/system/info", endpoint="info"),
    Rule("/service/boards/<int:board_id>/statuses", endpoint="board_statuses"),
    Rule("/service/boards/<int:board_id>/types", endpoint="board_types"),
    Rule("/service/tickets/<int:record_id>", endpoint="ticket"),
    Rule("/service/tickets/<int:ticket_id>/notes", endpoint="notes"),
    Rule("/service/tickets/<int:ticket_id>/configurations", endpoint="ticket_configurations"),
    Rule("/system/callbacks", endpoint="callbacks"),
    Rule("/system/callbacks/<int:record_id>", endpoint="callback"),
    Rule("/finance/agreements/<int:agreement_id>/additions", endpoint="additions"),
    Rule("/finance/agreements/<int:agreement_id>/additions/<int:addition_id>",
         endpoint="addition"),
    *[Rule(path, endpoint="list") for path in LISTS],
], strict_slashes=False)


@dataclass
class Fault:
    """One injected failure: the next `times` matching requests get `status` and `body`,
    after `delay` seconds; with `after=True` the request is carried out first (its outcome
    is then unknown to the caller)."""

    method: str
    pattern: re.Pattern
    status: int = 500
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    after: bool = False
    delay: float = 0.0
    times: int = 1


class ConnectWiseSimulator:
    """The WSGI application. `requests` lists what was asked (method, path, status)."""

    def __init__(self, company_id: str, public_key: str, private_key: str, client_id: str,
                 state: State | None = None, latency: float = 0.0) -> None:
        login = f"{company_id}+{public_key}:{private_key}".encode()
        self.expected_auth = "Basic " + base64.b64encode(login).decode("ascii")
        self.client_id = client_id
        self.state = state or State()
        self.latency = latency
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[dict]:
        return list(self.state.log)

    def fail(self, method: str, path: str, status: int = 500, **options) -> Fault:
        fault = Fault(method.upper(), re.compile(path), status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def tickets(self) -> list[dict]:
        return self.state.rows("tickets")

    def notes(self, ticket_id: int) -> list[dict]:
        return [n for n in self.state.rows("notes") if n["ticketId"] == ticket_id]

    # -- what the provider's own people do (for tests and demos of inbound changes): as
    # member dana.noc, with callbacks to whoever registered one (provider_side)
    def provider_opens_ticket(self, summary: str, company: str, **fields) -> dict:
        return provider_side.open_ticket(self.state, summary, company, **fields)

    def provider_adds_note(self, ticket_id: int, text: str, resolution: bool = False) -> dict:
        return provider_side.add_note(self.state, ticket_id, text, resolution)

    def provider_sets_status(self, ticket_id: int, status: str) -> dict:
        return provider_side.set_status(self.state, ticket_id, status)

    # -- WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path.rstrip("/").endswith("/_sim/state"):
            return self._json(self.state.snapshot(), 200)(environ, start_response)
        if "/_sim/provider/" in path:
            body = json.loads(request.get_data() or b"{}") if request.is_json else {}
            answer = provider_side.sim_request(self.state, request.method, path,
                                               body if isinstance(body, dict) else {})
            if answer is not None:
                return self._json(answer[1], answer[0])(environ, start_response)
        where = path.find(API_ROOT)
        api_path = path[where + len(API_ROOT):] if where >= 0 else None
        if self.latency:
            time.sleep(self.latency)
        entry = {"method": request.method, "path": api_path or path, "status": None}
        self.state.log.append(entry)  # on arrival: a slow answer is still a request received
        response = self._answer(request, api_path)
        entry["status"] = response.status_code
        return response(environ, start_response)

    def _answer(self, request: Request, api_path: str | None) -> Response:
        if api_path is None:
            return self._json(NO_ENDPOINT, 404)
        if request.headers.get("Authorization") != self.expected_auth:
            return self._json({"code": "Unauthorized", "message": "UserNotAuthenticated: the "
                               "company, public key or private key is wrong"}, 401)
        if request.headers.get("clientId") != self.client_id:
            return self._json({"code": "Unauthorized", "message": "a valid clientId header is "
                               "required"}, 401)
        fault = self._fault(request.method, api_path)
        if fault is not None and not fault.after:
            return self._fault_response(fault)
        try:
            response = self._dispatch(request, api_path)
        except ApiFailure as exc:
            response = self._json(exc.body, exc.status, exc.headers)
        if fault is None:
            return response
        if fault.status < 300:  # the real answer, late (a timeout's unknown outcome)
            time.sleep(fault.delay)
            return response
        return self._fault_response(fault)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.pattern.search(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        time.sleep(fault.delay)
        body = fault.body if fault.body is not None else {
            "code": "ConnectWiseApi", "message": f"simulated failure (HTTP {fault.status})"}
        return self._json(body, fault.status, fault.headers)

    @staticmethod
    def _json(body, status: int, headers: dict | None = None) -> Response:
        return Response(json.dumps(body), status, headers=headers,
                        content_type="application/json; charset=utf-8")

    def _body(self, request: Request):
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            raise ApiFailure(400, {"code": "InvalidJson", "message": "the body is not JSON"}) \
                from None

    def _dispatch(self, request: Request, api_path: str) -> Response:
        adapter = RULES.bind("simulator", "/")
        try:
            endpoint, args = adapter.match(api_path, method=None)
        except Exception:  # werkzeug's NotFound / redirects: ConnectWise's answer for both
            return self._json(NO_ENDPOINT, 404)
        handler = getattr(self, f"_{endpoint}_{request.method.lower()}", None)
        if handler is None:
            return self._json({"code": "ConnectWiseApi", "message": f"{request.method} is not "
                               f"supported on {api_path}"}, 405)
        return handler(request, api_path=api_path, **args)

    # -- lists
    def _page(self, request: Request, rows: list[dict]) -> Response:
        try:
            page = int(request.args.get("page", 1))
            size = int(request.args.get("pageSize", 25))
            predicate = parse(request.args.get("conditions"))
        except (ValueError, ConditionError) as exc:
            raise ApiFailure(400, {"code": "InvalidObject", "message": str(exc)}) from None
        if size > 1000 or size < 1 or page < 1:
            raise ApiFailure(400, {"code": "InvalidObject", "message": "pageSize must be "
                                   "between 1 and 1000, page at least 1"})
        matching = sorted((r for r in rows if predicate(r)), key=lambda r: r["id"])
        chunk = matching[(page - 1) * size: page * size]
        fields = [f.strip() for f in (request.args.get("fields") or "").split(",") if f.strip()]
        if fields:
            chunk = [{k: v for k, v in r.items() if k in fields} for r in chunk]
        headers = {}
        if page * size < len(matching):
            next_url = request.base_url + f"?page={page + 1}&pageSize={size}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return self._json(chunk, 200, headers)

    def _list_get(self, request: Request, api_path: str) -> Response:
        table, _ = LISTS[api_path.rstrip("/")]
        rows = self.state.rows(table)
        if table == "contacts":  # list views show the display name too
            rows = [{**r, "name": display_name(r)} for r in rows]
        return self._page(request, rows)

    def _board_statuses_get(self, request: Request, api_path: str, board_id: int) -> Response:
        return self._page(request, [s for s in self.state.rows("statuses")
                                    if s["board"]["id"] == board_id])

    def _board_types_get(self, request: Request, api_path: str, board_id: int) -> Response:
        return self._page(request, [t for t in self.state.rows("types")
                                    if t["board"]["id"] == board_id])

    def _info_get(self, request: Request, api_path: str) -> Response:
        return self._json({"version": "v2025.1.99999", "isCloud": False,
                           "serverTimeZone": "Eastern Standard Time",
                           "licenseBits": [], "cloudRegion": "NA"}, 200)

    # -- tickets, notes, additions
    def _list_post(self, request: Request, api_path: str) -> Response:
        if api_path.rstrip("/") != "/service/tickets":
            return self._json(NO_ENDPOINT, 404)
        return self._json(records.create_ticket(self.state, self._body(request) or {}), 201)

    def _ticket_get(self, request: Request, api_path: str, record_id: int) -> Response:
        ticket = self.state.get("tickets", record_id)
        if ticket is None:
            raise records.not_found(f"Ticket {record_id}")
        return self._json(ticket, 200)

    def _ticket_patch(self, request: Request, api_path: str, record_id: int) -> Response:
        return self._json(records.patch_ticket(self.state, record_id, self._body(request)), 200)

    def _notes_get(self, request: Request, api_path: str, ticket_id: int) -> Response:
        return self._page(request, self.notes(ticket_id))

    def _notes_post(self, request: Request, api_path: str, ticket_id: int) -> Response:
        return self._json(records.add_note(self.state, ticket_id, self._body(request) or {}), 201)

    def _ticket_configurations_get(self, request: Request, api_path: str,
                                   ticket_id: int) -> Response:
        return self._page(request, provider_side.ticket_configurations(self.state, ticket_id))

    def _callbacks_get(self, request: Request, api_path: str) -> Response:
        return self._page(request, self.state.rows("callbacks"))

    def _callbacks_post(self, request: Request, api_path: str) -> Response:
        return self._json(provider_side.add_callback(self.state, self._body(request) or {}), 201)

    def _callback_delete(self, request: Request, api_path: str, record_id: int) -> Response:
        provider_side.delete_callback(self.state, record_id)
        return Response(status=204)

    def _additions_get(self, request: Request, api_path: str, agreement_id: int) -> Response:
        return self._page(request, [a for a in self.state.rows("additions")
                                    if a["agreementId"] == agreement_id])

    def _additions_post(self, request: Request, api_path: str, agreement_id: int) -> Response:
        body = self._body(request) or {}
        return self._json(records.add_addition(self.state, agreement_id, body), 201)

    def _addition_patch(self, request: Request, api_path: str, agreement_id: int,
                        addition_id: int) -> Response:
        return self._json(records.patch_addition(self.state, agreement_id, addition_id,
                                                 self._body(request)), 200)


@dataclass
class RunningSimulator:
    url: str  # the API root, up to and including /apis/3.0
    simulator: ConnectWiseSimulator
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def start_simulator(simulator: ConnectWiseSimulator, host: str = "127.0.0.1",
                    port: int = 0) -> RunningSimulator:
    """Serves the simulator in a background thread (tests, benchmarks)."""
    server = make_server(host, port, simulator, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="psa-simulator", daemon=True)
    thread.start()
    url = f"http://{host}:{server.server_port}/v4_6_release{API_ROOT}"
    return RunningSimulator(url, simulator, server, thread)


def run_simulator(host: str, port: int, credentials: dict, state_file=None,
                  latency: float = 0.0) -> None:
    """`liaison simulate-psa`: serves until interrupted."""
    state = State(state_file) if state_file else State()
    simulator = ConnectWiseSimulator(credentials["company_id"], credentials["public_key"],
                                     credentials["private_key"], credentials["client_id"],
                                     state, latency)
    running = start_simulator(simulator, host, port)
    print(f"simulated ConnectWise at {running.url} (company {credentials['company_id']}, "
          f"public key {credentials['public_key']}, client id {credentials['client_id']}); "
          f"its state: {running.url}/_sim/state", flush=True)
    try:
        running.thread.join()
    finally:
        running.stop()
