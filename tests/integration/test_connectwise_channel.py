"""Tasks of a ConnectWise provider's group through the outbox to the simulated ConnectWise:
tickets, notes, closure, and what goes wrong (unknown outcomes, 429, 400, wrong keys)."""

from __future__ import annotations

import pytest

from engine.adapters.providers import Delivery
from engine.exceptions import DeliveryError
from engine.services import admin, outbox, psa_lookups, psa_settings, queries, tasks
from engine.worker import Worker
from tests.conftest import make_core
from tests.fakes import FakeClock
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator

MEMBER = {"company_id": "acme", "public_key": "pub-1", "private_key": "Priv-Key-Channel-1",
          "client_id": "client-1"}
SETTINGS = {"board": "Managed NOC", "service_type": "Incident",
            "priority": "Priority 3 - Normal Response", "contact": "Dana Noc",
            "company": "ACMERetail", "auto_close": True}


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


def connect(core, url: str, settings: dict | None = None) -> int:
    provider = core.run(admin.create_provider, "NOC", "connectwise",
                        connection={"url": url, **MEMBER})
    psa_lookups.refresh(core, provider["id"])
    core.run(psa_settings.put_settings, provider["id"], settings or SETTINGS)
    core.run(psa_settings.put_mapping, provider["id"], "priority",
             {"high": "Priority 2 - Quick Response"})
    core.run(admin.create_group, "Managed NOC", integrated=True, provider="NOC")
    return provider["id"]


def new_task(core, priority: str = "high", title: str = "Router down in Leeds") -> int:
    ticket = core.run(tasks.create_ticket, "Leeds offline", "", customer="ACME")
    return core.run(tasks.create_task, ticket["id"], title, "Serial 4711", group="Managed NOC",
                    priority=priority)["id"]


def exchanges(core, task_id: int) -> list[dict]:
    return core.run(queries.exchanges_of_task, task_id)


@pytest.fixture
def cw(any_db_url, tmp_path, mailer, simulator):
    core = make_core(any_db_url, tmp_path, mailer)
    connect(core, simulator.url)
    yield core
    core.close()


def test_a_task_becomes_a_ticket_with_the_mapped_values_and_closes_there(cw, simulator):
    task_id = new_task(cw)
    Worker(cw).run_once()
    [ticket] = simulator.simulator.tickets()
    assert ticket["board"]["name"] == "Managed NOC" and ticket["type"]["name"] == "Incident"
    assert ticket["priority"]["name"] == "Priority 2 - Quick Response"  # mapped from "high"
    assert ticket["company"]["identifier"] == "ACMERetail"
    assert ticket["contact"]["name"] == "Dana Noc"
    assert ticket["externalXRef"] == f"liaison:{task_id}"
    task = cw.run(queries.task_detail, task_id)
    assert task["external_reference"] == str(ticket["id"])
    ack = [e for e in exchanges(cw, task_id) if e["request_type"] == "Acknowledgement"]
    assert [(e["direction"], e["channel"], e["status"]) for e in ack] == [
        ("In", "connectwise", "delivered")]

    cw.run(tasks.add_update, task_id, "Please also check the backup line", actor="agent")
    Worker(cw).run_once()
    cw.run(tasks.close_task, task_id, "Line repaired", actor="agent")
    Worker(cw).run_once()
    notes = simulator.simulator.notes(ticket["id"])
    assert [n["text"] for n in notes] == ["Serial 4711", "Please also check the backup line"]
    assert all(n["detailDescriptionFlag"] for n in notes)
    assert simulator.simulator.tickets()[0]["status"]["name"] == "Closed"
    assert {e["status"] for e in exchanges(cw, task_id)} == {"delivered"}


def test_an_unmapped_priority_falls_back_to_the_default(cw, simulator):
    new_task(cw, priority="normal")
    Worker(cw).run_once()
    assert simulator.simulator.tickets()[0]["priority"]["name"] == "Priority 3 - Normal Response"


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(cw, simulator):
    cw.psa_clients.timeouts = (2.0, 0.5)
    cw.psa_clients.close()  # clients made from now on wait 0.5 s for an answer
    # the ticket is created, but the answer comes too late; and the look-up fails as well
    simulator.simulator.fail("POST", r"/service/tickets$", 201, after=True, delay=1.5)
    simulator.simulator.fail("GET", r"/service/tickets$", 503)
    task_id = new_task(cw)
    Worker(cw).run_once()
    [submit] = exchanges(cw, task_id)
    assert submit["status"] == "pending" and "did not answer" in submit["error"]
    Worker(cw).run_once()  # the retry looks for liaison:<task id> first and adopts it
    assert len(simulator.simulator.tickets()) == 1
    ticket_id = simulator.simulator.tickets()[0]["id"]
    assert cw.run(queries.task_detail, task_id)["external_reference"] == str(ticket_id)
    posts = [r for r in simulator.simulator.requests
             if r["method"] == "POST" and r["path"] == "/service/tickets"]
    assert len(posts) == 1


def test_a_5xx_after_the_create_is_adopted_at_once(cw, simulator):
    simulator.simulator.fail("POST", r"/service/tickets$", 500, after=True)
    task_id = new_task(cw)
    Worker(cw).run_once()
    assert len(simulator.simulator.tickets()) == 1
    assert exchanges(cw, task_id)[0]["status"] == "delivered"


def test_a_validation_error_fails_at_once_with_connectwise_s_message(cw, simulator):
    simulator.simulator.fail("POST", r"/service/tickets$", 400, body={
        "code": "InvalidObject", "message": "ticket object is invalid",
        "errors": [{"code": "InvalidField", "message": "Board is inactive", "resource": "ticket",
                    "field": "board"}]})
    task_id = new_task(cw)
    Worker(cw).run_once()
    Worker(cw).run_once()
    [submit] = exchanges(cw, task_id)
    assert submit["status"] == "failed" and submit["attempts"] == 1
    assert "board: Board is inactive" in submit["error"]
    # replay once the cause is gone: delivered, one ticket
    cw.run(outbox.replay_exchange, submit["id"])
    Worker(cw).run_once()
    assert exchanges(cw, task_id)[0]["status"] == "delivered"
    assert len(simulator.simulator.tickets()) == 1


def test_429_waits_for_retry_after(sqlite_url, tmp_path, mailer, simulator):
    clock = FakeClock()
    core = make_core(sqlite_url, tmp_path, mailer, clock=clock)
    try:
        connect(core, simulator.url)
        simulator.simulator.fail("POST", r"/service/tickets$", 429,
                                 headers={"Retry-After": "120"})
        task_id = new_task(core)
        Worker(core).run_once()
        assert exchanges(core, task_id)[0]["status"] == "pending"
        clock.advance(seconds=100)
        Worker(core).run_once()
        assert simulator.simulator.tickets() == []  # not before Retry-After
        clock.advance(seconds=21)
        Worker(core).run_once()
        assert len(simulator.simulator.tickets()) == 1
    finally:
        core.close()


def test_wrong_keys_fail_with_the_reason_and_replay_once_fixed(cw, simulator):
    provider_id = cw.run(queries.list_providers)[0]["id"]
    cw.run(admin.update_provider, provider_id, {"connection": {"private_key": "Wrong-Key-1"}})
    task_id = new_task(cw)
    Worker(cw).run_once()
    [submit] = exchanges(cw, task_id)
    assert submit["status"] == "failed" and "authentication failed" in submit["error"]
    cw.run(admin.update_provider, provider_id, {"connection": {"private_key":
                                                               MEMBER["private_key"]}})
    cw.run(outbox.replay_exchange, submit["id"])
    Worker(cw).run_once()
    assert exchanges(cw, task_id)[0]["status"] == "delivered"


def test_a_key_changed_by_another_process_is_used_at_the_next_delivery(
        any_db_url, tmp_path, mailer, cw, simulator):
    """The worker keeps a provider's opened key only while the connection's version it reads
    in its claim is the one the key came from: no stale key after a change elsewhere."""
    provider_id = cw.run(queries.list_providers)[0]["id"]
    first = new_task(cw)
    Worker(cw).run_once()  # the key is opened and kept by this process
    assert exchanges(cw, first)[0]["status"] == "delivered"
    other = make_core(any_db_url, tmp_path / "other", mailer)  # another process, same database
    try:
        other.run(admin.update_provider, provider_id,
                  {"connection": {"private_key": "Wrong-Key-2"}})
        second = new_task(cw)
        Worker(cw).run_once()
        [submit] = exchanges(cw, second)
        assert submit["status"] == "failed" and "authentication failed" in submit["error"]
        other.run(admin.update_provider, provider_id,
                  {"connection": {"private_key": MEMBER["private_key"]}})
        third = new_task(cw)
        Worker(cw).run_once()
        assert exchanges(cw, third)[0]["status"] == "delivered"
    finally:
        other.close()


def test_an_update_before_the_ticket_exists_waits_for_it(cw, simulator):
    channel = cw.channels.get("connectwise")
    provider_id = cw.run(queries.list_providers)[0]["id"]
    message = {"provider_id": provider_id, "task_id": 999, "operation": "add_note",
               "ticket_id": None, "note": {"text": "x", "detailDescriptionFlag": True}}
    with pytest.raises(DeliveryError) as caught:
        channel.deliver(message, Delivery(1, 1))
    assert caught.value.retryable and "not known yet" in caught.value.message


def test_without_a_connection_the_request_is_failed_and_replayable(core, simulator):
    core.run(admin.create_provider, "NOC", "connectwise")
    core.run(admin.create_group, "Managed NOC", integrated=True, provider="NOC")
    task_id = new_task(core)
    [submit] = exchanges(core, task_id)
    assert submit["status"] == "failed" and "no ConnectWise connection" in submit["error"]
    provider_id = core.run(queries.list_providers)[0]["id"]
    core.run(admin.update_provider, provider_id, {"connection": {"url": simulator.url,
                                                                 **MEMBER}})
    psa_lookups.refresh(core, provider_id)
    core.run(psa_settings.put_settings, provider_id, SETTINGS)
    core.run(outbox.replay_exchange, submit["id"])
    Worker(core).run_once()
    assert exchanges(core, task_id)[0]["status"] == "delivered"
    assert simulator.simulator.tickets()[0]["externalXRef"] == f"liaison:{task_id}"


def test_without_auto_close_the_closure_is_a_note(core, simulator):
    connect(core, simulator.url, {**SETTINGS, "auto_close": False})
    task_id = new_task(core)
    Worker(core).run_once()
    core.run(tasks.close_task, task_id, "Done", actor="agent")
    Worker(core).run_once()
    ticket = simulator.simulator.tickets()[0]
    assert ticket["status"]["name"] == "New"
    assert simulator.simulator.notes(ticket["id"])[-1]["text"] == "Closed at our end: Done"


def test_a_long_title_is_cut_to_100_characters(core, simulator):
    connect(core, simulator.url)
    new_task(core, title="x" * 300)
    Worker(core).run_once()
    assert len(simulator.simulator.tickets()[0]["summary"]) == 100


def test_a_create_delivered_long_after_it_was_rendered_looks_first(cw, simulator):
    """A crashed worker's create taken over after its lease, or a replay: same ticket."""
    channel = cw.channels.get("connectwise")
    provider_id = cw.run(queries.list_providers)[0]["id"]
    task_id = new_task(cw)
    Worker(cw).run_once()
    message = cw.run(lambda uow: uow.repo.exchanges(task_id=task_id)[0].payload)
    stale = {**message, "rendered_at": message["rendered_at"] - 3600}
    result = channel.deliver(stale, Delivery(outbox_id=99, exchange_id=None, attempt=1))
    assert result["adopted"] is True and len(simulator.simulator.tickets()) == 1
    assert message["provider_id"] == provider_id
