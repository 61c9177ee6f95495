"""A simulated provider: `liaison simulate-provider --port P`.

It implements the provider-side contract (`provider.wsdl`) that liaison calls for providers
whose channel is `soap`, answers every request at once, and — for a Submit Request — calls
liaison's WorkflowService back after `delay` seconds with its own credentials (zeep,
WS-Security PasswordDigest) to acknowledge the task with a reference of its own. Without
`--username/--password` it uses the demo provider's credentials that `liaison demo` keeps in
the instance folder.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import resources

from spyne import Application, ComplexModel, ServiceBase, rpc
from spyne.model.primitive import Integer32, Unicode
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from werkzeug.serving import make_server

from engine.exceptions import LiaisonError

log = logging.getLogger(__name__)

NAMESPACE = "urn:liaison:provider"
SOAP_PATH = "/Workflow/WebService/WorkflowService.asmx"
WORKFLOW_BINDING = "{urn:liaison:workflow}WorkflowServiceSoap"
PLACEHOLDER_ADDRESS = "http://provider.invalid/ProviderService"
Required, Optional = Unicode(min_occurs=1, nillable=False), Unicode(min_occurs=0)
RequiredInt = Integer32(min_occurs=1, nillable=False)
REQUEST_FIELDS = (("requestId", Required), ("requestType", Required), ("taskId", RequiredInt),
                  ("ticketId", RequiredInt), ("title", Required), ("description", Optional),
                  ("priority", Optional), ("customer", Optional),
                  ("externalReference", Optional), ("text", Optional))


class ProviderResult(ComplexModel):
    __namespace__ = NAMESPACE
    _type_info = [("status", Required), ("externalReference", Optional)]


@dataclass
class SimulatedProvider:
    """What the simulated provider does with a request; `received` keeps each for a look."""

    liaison_url: str | None
    username: str | None
    password: str | None
    delay: float = 2.0
    received: list[dict] = field(default_factory=list)
    acknowledged: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._answers: dict[str, dict] = {}
        self._numbers = itertools.count(1001)
        self._lock = threading.Lock()
        self._client = None

    def receive(self, operation: str, request: dict) -> dict:
        with self._lock:
            previous = self._answers.get(request["requestId"])
            if previous is not None:  # the contract: a repeated requestId changes nothing
                return {**previous, "status": "duplicate"}
            reference = request.get("externalReference") or f"SIM-{next(self._numbers)}"
            answer = self._answers[request["requestId"]] = {"status": "accepted",
                                                            "externalReference": reference}
            self.received.append({"operation": operation, **request})
        log.info("simulated provider: %s for task %s (%s)", operation, request["taskId"], reference)
        if operation == "SubmitRequest" and self.liaison_url and self.username:
            timer = threading.Timer(self.delay, self.acknowledge,
                                    (request["taskId"], reference, request["requestId"]))
            timer.daemon = True
            timer.start()
        return answer

    def acknowledge(self, task_id: int, reference: str, request_id: str, attempts: int = 3) -> None:
        """Calls liaison back, as the real provider's system would."""
        for attempt in range(1, attempts + 1):
            try:
                result = self._workflow().ProcessInstanceTaskExternalAcknowledgement(
                    taskId=task_id, externalReference=reference, requestId=f"ack-{request_id}")
            except Exception as exc:  # the demo goes on; say what happened
                log.warning("simulated provider: acknowledgement of task %s failed (attempt %d): "
                            "%s", task_id, attempt, exc)
                time.sleep(attempt)
                continue
            self.acknowledged.append({"taskId": task_id, "externalReference": reference,
                                      "status": result.status})
            log.info("simulated provider: acknowledged task %s as %s (%s)", task_id, reference,
                     result.status)
            return

    def _workflow(self):
        import zeep
        from zeep.wsse.username import UsernameToken

        with self._lock:
            if self._client is None:
                endpoint = self.liaison_url.rstrip("/") + SOAP_PATH
                settings = zeep.Settings(forbid_dtd=True, forbid_entities=True,
                                         forbid_external=True)
                client = zeep.Client(endpoint + "?wsdl", settings=settings,
                                     transport=zeep.Transport(timeout=10, operation_timeout=15),
                                     wsse=UsernameToken(self.username, self.password,
                                                        use_digest=True))
                self._client = client.create_service(WORKFLOW_BINDING, endpoint)
            return self._client


def _operation(name: str, doc: str):
    def handle(ctx, *values):
        request = dict(zip((n for n, _ in REQUEST_FIELDS), values, strict=True))
        return ProviderResult(**ctx.app.simulator.receive(name, request))

    handle.__name__, handle.__doc__ = name, doc
    return rpc(*(kind for _, kind in REQUEST_FIELDS), _args=[n for n, _ in REQUEST_FIELDS],
               _returns=ProviderResult, _out_message_name=name + "Response",
               _out_variable_name=name + "Result")(handle)


def provider_service():
    operations = {"SubmitRequest": "A task was assigned to the provider.",
                  "SendUpdate": "An agent added update text.",
                  "RejectResolution": "An agent declined the provider's solution.",
                  "CloseTask": "An agent closed the task."}
    namespace = {name: _operation(name, doc) for name, doc in operations.items()}
    return type("ProviderService", (ServiceBase,), namespace)


class SimulatorApp:
    """GET: the shipped contract with this server's address; POST: the spyne service."""

    def __init__(self, simulator: SimulatedProvider) -> None:
        app = Application([provider_service()], tns=NAMESPACE, name="ProviderService",
                          in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
        app.simulator = simulator
        self.spyne = WsgiApplication(app)
        self.wsdl = resources.files("webservice").joinpath("provider.wsdl").read_bytes()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            return self.spyne(environ, start_response)
        address = f"http://{environ.get('HTTP_HOST', 'localhost')}{environ.get('PATH_INFO', '')}"
        body = self.wsdl.replace(PLACEHOLDER_ADDRESS.encode(), address.encode())
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]


@dataclass
class RunningSimulator:
    url: str
    provider: SimulatedProvider
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def start_simulator(host: str, port: int, provider: SimulatedProvider) -> RunningSimulator:
    """Serves the simulator in a background thread (tests, an in-process demo)."""
    server = make_server(host, port, SimulatorApp(provider), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="provider-simulator", daemon=True)
    thread.start()
    return RunningSimulator(f"http://{host}:{server.server_port}/ProviderService", provider,
                            server, thread)


def demo_provider(settings=None, delay: float = 2.0, liaison_url: str | None = None,
                  username: str | None = None, password: str | None = None) -> SimulatedProvider:
    """The simulated provider acting as the demo provider (`liaison demo` keeps its
    credentials in the instance folder); explicit values win."""
    from engine.config import Settings
    from engine.services.demo import read_credentials

    settings = settings or Settings.from_env()
    values = read_credentials(settings)
    return SimulatedProvider(liaison_url or settings.public_url,
                             username or values.get("provider_username"),
                             password or values.get("provider_password"), delay)


def run_simulator(host: str, port: int, liaison_url: str | None, username: str | None,
                  password: str | None, delay: float) -> None:
    """`liaison simulate-provider`: serves until interrupted."""
    provider = demo_provider(None, delay, liaison_url, username, password)
    if not (provider.username and provider.password):
        raise LiaisonError("no provider credentials: pass --username and --password, "
                           "or run `liaison demo` first")
    running = start_simulator(host, port, provider)
    print(f"simulated provider at {running.url} (WSDL: {running.url}?wsdl); acknowledges to "
          f"{provider.liaison_url} as {provider.username} after {delay:g} s", flush=True)
    try:
        running.thread.join()
    finally:
        running.stop()
