"""The ConnectWise client and channel against recorded, real-shaped ConnectWise answers
(tests/fixtures/connectwise, see its README), replayed by a loopback server: not only
against our own simulator."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine.adapters.connectwise_channel import ConnectWiseChannel
from engine.adapters.connectwise_client import ApiError, Connection, ConnectWiseClient
from engine.adapters.providers import Delivery, OutboundRequest, ProviderInfo
from engine.exceptions import DeliveryError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "connectwise"
PRIVATE_KEY = "Rec0rdedPrivateKey"
TASK = {"id": 7, "ticket_id": 3, "title": "Router down in Leeds", "description": "Serial 4711",
        "priority": "high", "customer": "ACME", "external_reference": None}
SETTINGS = {"connected": True, "enabled": True, "auto_close": True, "closed_status": None,
            "refs": {"board": {"id": 35, "name": "Support"},
                     "priority": {"id": 7, "name": "Priority 2 - Quick Response"},
                     "company": {"id": 250, "identifier": "ACMERetail"}}}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


class Replay:
    """Answers each request with the first unused fixture whose method, path and query match."""

    def __init__(self, *names: str) -> None:
        self.pending = [fixture(name) for name in names]
        self.received: list[dict] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path.split("/apis/3.0", 1)[1]
        self.received.append({"method": request.method, "path": path,
                              "query": dict(request.args), "headers": dict(request.headers),
                              "body": request.get_json(silent=True)})
        for recorded in self.pending:
            wanted = recorded["request"]
            query = wanted.get("query", {})
            if (wanted["method"], wanted["path"]) == (request.method, path) and all(
                    request.args.get(k) == v for k, v in query.items()):
                self.pending.remove(recorded)
                answer = recorded["response"]
                return Response(json.dumps(answer["body"]), answer["status"],
                                headers=answer.get("headers"),
                                content_type="application/json; charset=utf-8")(environ,
                                                                                 start_response)
        return Response("no recording", 599)(environ, start_response)


@pytest.fixture
def replay():
    servers = []

    def start(*names: str) -> tuple[Replay, ConnectWiseClient]:
        app = Replay(*names)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}/v4_6_release/apis/3.0"
        return app, ConnectWiseClient(Connection(url, "acme", "pub", PRIVATE_KEY, "client-1"))

    yield start
    for server in servers:
        server.shutdown()


def channel_for(client: ConnectWiseClient) -> ConnectWiseChannel:
    return ConnectWiseChannel(lambda provider_id, stamp=None: client)


def render(channel, request_type: str, text: str = "", reference: str | None = None,
           settings: dict | None = None) -> dict:
    return channel.render(ProviderInfo("NOC", "connectwise", id=4, settings=settings or SETTINGS),
                          OutboundRequest(request_type, {**TASK, "external_reference": reference},
                                          {"id": 3}, text))


def test_a_submit_request_posts_the_ticket_and_returns_its_id(replay):
    server, client = replay("ticket_created")
    channel = channel_for(client)
    result = channel.deliver(render(channel, "Submit Request"), Delivery(1, 11))
    assert result["external_reference"] == "40789"
    sent = server.received[0]
    assert sent["body"] == {"summary": "Router down in Leeds", "initialDescription": "Serial 4711",
                            "externalXRef": "liaison:7", "board": {"id": 35, "name": "Support"},
                            "priority": {"id": 7, "name": "Priority 2 - Quick Response"},
                            "company": {"id": 250, "identifier": "ACMERetail"}}
    login = base64.b64decode(sent["headers"]["Authorization"].removeprefix("Basic ")).decode()
    assert login == f"acme+pub:{PRIVATE_KEY}"
    assert sent["headers"]["Clientid"] == "client-1"


def test_validation_errors_are_spelled_out_and_not_retried(replay):
    _, client = replay("ticket_invalid")
    channel = channel_for(client)
    with pytest.raises(DeliveryError) as caught:
        channel.deliver(render(channel, "Submit Request"), Delivery(1, 11))
    assert caught.value.retryable is False
    assert "InvalidObject: ticket object is invalid" in caught.value.message
    assert "company: The company field is required." in caught.value.message
    assert "board: Board not found" in caught.value.message


def test_an_update_becomes_a_note_shown_in_the_detail_description(replay):
    server, client = replay("note_created")
    channel = channel_for(client)
    result = channel.deliver(render(channel, "Update", "Please hurry", "40789"), Delivery(2, 12))
    assert result == {"ticket_id": 40789, "note_id": 1207}
    assert server.received[0]["body"] == {"text": "Please hurry", "detailDescriptionFlag": True}


def test_a_note_refused_for_its_display_flag_says_why(replay):
    _, client = replay("note_without_flag")
    with pytest.raises(ApiError) as caught:
        client.add_note(40789, {"text": "x"})
    assert caught.value.status == 400 and not caught.value.retryable
    assert "Please choose where to display the notes." in caught.value.message


def test_closing_patches_the_boards_first_closed_status(replay):
    server, client = replay("board_statuses", "ticket_closed")
    channel = channel_for(client)
    result = channel.deliver(render(channel, "Closed", "fixed", "40789"), Delivery(3, 13))
    assert result == {"ticket_id": 40789, "status": ">Closed"}
    patch = server.received[-1]
    assert patch["method"] == "PATCH" and patch["path"] == "/service/tickets/40789"
    # "Completed" comes first by sortOrder among the statuses flagged closedStatus
    assert patch["body"] == [{"op": "replace", "path": "status/name", "value": "Completed"}]


def test_a_failed_create_is_looked_up_by_external_xref_before_anything_else(replay):
    server, client = replay("server_error", "tickets_by_xref")
    channel = channel_for(client)
    result = channel.deliver(render(channel, "Submit Request"), Delivery(1, 11))
    assert result["external_reference"] == "40789" and result["adopted"] is True
    assert [r["method"] for r in server.received] == ["POST", "GET"]
    assert server.received[1]["query"]["conditions"] == 'externalXRef="liaison:7"'


def test_429_carries_retry_after(replay):
    _, client = replay("rate_limited")
    with pytest.raises(ApiError) as caught:
        client.create_ticket({"summary": "x"})
    assert caught.value.retryable and caught.value.retry_after == 30


@pytest.mark.parametrize(("name", "words"), [
    ("unauthenticated", "authentication failed"),
    ("endpoint_missing", "The endpoint does not exist."),
])
def test_connection_failures_read_well(replay, name, words):
    _, client = replay(name)
    with pytest.raises(ApiError) as caught:
        client.system_info()
    assert words in caught.value.message and PRIVATE_KEY not in caught.value.message
    assert not caught.value.retryable


def test_lists_are_read_page_by_page(replay):
    server, client = replay("boards_page1", "boards_page2")
    boards = client.get_all("/service/boards", page_size=2)
    assert [b["name"] for b in boards] == ["Professional Services", "Support", "Managed NOC"]
    assert [(r["query"]["page"], r["query"]["pageSize"]) for r in server.received] == [
        ("1", "2"), ("2", "2")]


def test_system_info_answers_the_connection_test(replay):
    _, client = replay("system_info")
    assert client.system_info()["version"] == "v2019.4.69522"


def test_the_simulator_lets_the_provider_act_too():
    from webservice.psa_simulator import ConnectWiseSimulator
    simulator = ConnectWiseSimulator("acme", "pub", "key", "cid")
    ticket = simulator.provider_opens_ticket("Disk full on SRV-1", "ACMERetail")
    simulator.provider_adds_note(ticket["id"], "We are on it")
    closed = simulator.provider_sets_status(ticket["id"], "Work completed")
    assert closed["status"]["name"] == "Work completed" and closed["closedFlag"] is False
    assert [n["text"] for n in simulator.notes(ticket["id"])] == ["We are on it"]
