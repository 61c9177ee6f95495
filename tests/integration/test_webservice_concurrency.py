"""Two identical requests at the same moment, over real HTTP on SQLite and PostgreSQL:
one is applied, the other answers `duplicate`, and the task changes once."""

from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from app import create_app
from engine.services import queries, tasks
from tests.conftest import free_port, seed
from tests.fixtures.soap.helpers import PATH, envelope, result, security_header

ACK = "ProcessInstanceTaskExternalAcknowledgement"


@pytest.fixture
def served(any_core):
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(core=any_core), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}{PATH}"
    server.shutdown()
    thread.join(5)


def post_together(url: str, bodies: list[bytes]) -> list[requests.Response]:
    barrier = threading.Barrier(len(bodies))
    responses: list[requests.Response | None] = [None] * len(bodies)

    def post(index: int) -> None:
        barrier.wait()
        responses[index] = requests.post(url, data=bodies[index], timeout=30,
                                         headers={"Content-Type": "text/xml; charset=utf-8"})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


class Response:
    """requests' response in the shape the helpers read (status_code, data)."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code, self.data = response.status_code, response.content


@pytest.mark.parametrize("digest", [False, True], ids=["byte-identical", "fresh-nonces"])
def test_two_concurrent_identical_requests_apply_once(any_core, served, digest):
    seeded = seed(any_core)
    creds = seeded["provider"]
    task = any_core.run(tasks.create_task, seeded["ticket"]["id"], "Line down", "", group="Carrier Group")
    fields = {"taskId": task["id"], "externalReference": "CAR-42", "requestId": "same-request"}

    def body() -> bytes:
        header = security_header(creds["username"], creds["password"], digest=digest,
                                 **({} if digest else {"nonce": None, "created": None}))
        return envelope(ACK, fields, header)

    answers = [result(Response(r), ACK) for r in post_together(served, [body(), body()])]

    assert sorted(a["status"] for a in answers) == ["accepted", "duplicate"]
    assert all(a["externalReference"] == "CAR-42" for a in answers)
    exchanges = any_core.run(queries.exchanges_of_task, task["id"])
    assert [e["request_type"] for e in exchanges].count("Acknowledgement") == 1
    assert any_core.run(tasks.get_task, task["id"])["external_reference"] == "CAR-42"
