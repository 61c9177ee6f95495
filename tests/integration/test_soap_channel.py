"""The outbound SOAP channel against providers on loopback: the simulator, and providers
that misbehave (slow, hostile XML, faults, HTTP errors, nobody listening)."""

from __future__ import annotations

import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine.adapters.providers import Delivery, OutboundRequest, ProviderInfo, delivery_key
from engine.adapters.soap_client import SoapChannel
from engine.exceptions import DeliveryError
from tests.conftest import free_port
from webservice.simulator import SimulatedProvider, start_simulator

TASK = {"id": 7, "ticket_id": 3, "title": "Line down", "description": "Leeds offline",
        "priority": "high", "customer": "ACME", "external_reference": None}
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


def fault_body(code: str) -> str:
    return (f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><s:Fault><faultcode>s:{code}</faultcode>'
            f"<faultstring>{code} says no</faultstring></s:Fault></s:Body></s:Envelope>")


DTD_ANSWER = (f'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
              f'<s:Envelope xmlns:s="{SOAP11}"><s:Body>&x;</s:Body></s:Envelope>')


class FakeProvider:
    """Answers every POST the same configured way, and counts the requests it got."""

    def __init__(self, status: int = 200, body: str = "", delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay
        self.requests = 0

    def __call__(self, environ, start_response):
        Request(environ).get_data()
        self.requests += 1
        time.sleep(self.delay)
        return Response(self.body, self.status, content_type="text/xml")(environ, start_response)


@pytest.fixture
def serve():
    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", free_port(), app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/provider"

    yield start
    for server in servers:
        server.shutdown()


def message_for(url: str, request_type: str = "Submit Request", text: str = "Please check",
                channel: SoapChannel | None = None) -> dict:
    channel = channel or SoapChannel()
    return channel.render(ProviderInfo("Carrier", "soap", endpoint_url=url),
                          OutboundRequest(request_type, TASK, {"id": 3}, text))


def deliver_error(channel: SoapChannel, message: dict) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        channel.deliver(message, Delivery(outbox_id=1, exchange_id=1))
    return caught.value


@pytest.fixture
def simulator():
    running = start_simulator("127.0.0.1", 0, SimulatedProvider(None, None, None))
    yield running
    running.stop()


@pytest.mark.parametrize("request_type, operation", [
    ("Submit Request", "SubmitRequest"), ("Update", "SendUpdate"),
    ("Resolution Rejection", "RejectResolution"), ("Closed", "CloseTask")])
def test_each_request_type_calls_its_operation_of_the_contract(simulator, request_type,
                                                               operation):
    channel = SoapChannel()
    message = message_for(simulator.url, request_type, channel=channel)
    first = channel.deliver(message, Delivery(outbox_id=1, exchange_id=1))
    # what a retry by the outbox sends: the same requestId
    again = channel.deliver(message, Delivery(outbox_id=1, exchange_id=1))

    assert first["status"] == "accepted" and first["external_reference"].startswith("SIM-")
    assert again == {**first, "status": "duplicate"}
    [received] = simulator.provider.received
    assert received["operation"] == operation
    assert (received["requestType"], received["taskId"], received["ticketId"]) == \
        (request_type, 7, 3)
    assert (received["title"], received["text"], received["customer"]) == \
        ("Line down", "Please check", "ACME")
    assert received["requestId"] == first["request_id"] == \
        delivery_key("", Delivery(outbox_id=1, exchange_id=1))


def test_the_request_id_is_the_exchanges_on_every_attempt_and_replay(simulator):
    channel = SoapChannel(secret_key="k")
    first = channel.deliver(message_for(simulator.url, channel=channel),
                            Delivery(outbox_id=1, exchange_id=42, attempt=1))
    # a replay renders the request again, from a new outbox row: the key stays the exchange's
    replayed = channel.deliver(message_for(simulator.url, channel=channel),
                               Delivery(outbox_id=9, exchange_id=42, attempt=1))
    other = channel.deliver(message_for(simulator.url, channel=channel),
                            Delivery(outbox_id=10, exchange_id=43))

    assert replayed == {**first, "status": "duplicate"}
    assert other["status"] == "accepted"
    assert [r["requestId"] for r in simulator.provider.received] == \
        [first["request_id"], other["request_id"]]
    assert "exchange-42-" in first["request_id"]
    # another installation (another secret key) never collides with ours
    assert delivery_key("other", Delivery(1, 42)) != first["request_id"]


def test_render_refuses_what_cannot_be_delivered():
    channel = SoapChannel()
    with pytest.raises(DeliveryError, match="no http\\(s\\) endpoint_url") as no_url:
        channel.render(ProviderInfo("Carrier", "soap"), OutboundRequest("Update", TASK, {}))
    assert not no_url.value.retryable
    with pytest.raises(DeliveryError, match="no SOAP operation") as unknown:
        message_for("http://127.0.0.1:9/p", "Acknowledgement", channel=channel)
    assert not unknown.value.retryable


def test_a_provider_that_does_not_answer_in_time_is_not_retried_at_once(serve):
    slow = FakeProvider(body=fault_body("Server"), delay=3.0)
    channel = SoapChannel(operation_timeout=0.3)
    error = deliver_error(channel, message_for(serve(slow), channel=channel))

    assert error.message == "provider did not answer within 0.3 s"
    assert error.retryable  # later, by the outbox, with the same requestId
    assert slow.requests == 1


@pytest.mark.parametrize("fake, retryable, text", [
    (FakeProvider(500, fault_body("Client")), False, "provider fault s:Client: Client says no"),
    (FakeProvider(500, fault_body("Server")), True, "provider fault s:Server: Server says no"),
    (FakeProvider(503, "<html>busy</html>"), True, "provider answered HTTP 503"),
    (FakeProvider(404, "<html>no such page</html>"), False, "provider answered HTTP 404"),
    (FakeProvider(200, DTD_ANSWER), False, "provider response refused"),
    (FakeProvider(200, "not xml at all"), True, "provider answered HTTP 200"),
], ids=["client-fault", "server-fault", "503", "404", "dtd", "garbage"])
def test_provider_failures_say_whether_trying_again_may_help(serve, fake, retryable, text):
    channel = SoapChannel()
    error = deliver_error(channel, message_for(serve(fake), channel=channel))

    assert error.message.startswith(text) and error.retryable is retryable
    assert fake.requests == 1  # nothing that reached the provider is repeated at once
    assert "root:" not in error.message


def test_an_unreachable_provider_is_retryable():
    channel = SoapChannel(connect_retries=1)
    error = deliver_error(channel, message_for(f"http://127.0.0.1:{free_port()}/p",
                                               channel=channel))
    assert error.message.startswith("provider unreachable") and error.retryable


def test_a_message_queued_with_its_own_request_id_keeps_it(simulator):
    channel = SoapChannel()
    message = message_for(simulator.url, channel=channel)
    message["arguments"]["requestId"] = "liaison-0123abcd"  # queued by an earlier version
    assert channel.deliver(message, Delivery(outbox_id=1, exchange_id=5))["request_id"] == \
        "liaison-0123abcd"
