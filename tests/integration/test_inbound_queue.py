"""The durable inbound queue (SQLite and PostgreSQL): idempotent by (provider, ticket, change),
held while inbound is off, applied in order per ticket, and one bad item never blocks the
others. Changes on linked tickets end in the same inbound use cases as SOAP and e-mail."""

from __future__ import annotations

import pytest

from engine.services import (
    customers,
    inbound_queue,
    inbound_settings,
    provider_tickets,
    psa_reports,
    queries,
    tasks,
)
from engine.services.provider_tickets import NewTicket
from tests.conftest import seed


@pytest.fixture
def world(any_core):
    data = seed(any_core)
    return any_core, data["provider"]["id"]


def opened(core, reference="T-1", site="S-1", site_name="Leeds Depot") -> dict:
    return {"ticket_ref": reference, "change_key": "opened", "kind": "new_ticket",
            "payload": NewTicket(reference=reference, title=f"Ticket {reference}", site=site,
                                 site_name=site_name, created_at="2026-12-01T08:00:00Z")
            .as_payload()}


def note(reference, note_id, text) -> dict:
    return {"ticket_ref": reference, "change_key": f"note:{note_id}", "kind": "note",
            "payload": {"note_id": note_id, "text": text}}


def status(reference, name, at, **flags) -> dict:
    return {"ticket_ref": reference, "change_key": f"status:{name}:{at}", "kind": "status",
            "payload": {"status": name, **flags}}


def enqueue(core, provider_id, *changes) -> int:
    def use_case(uow):
        added = inbound_queue.enqueue(uow, provider_id, list(changes), "poll")
        uow.commit()
        return added
    return core.run(use_case)


def enable(core, provider_id, on=True):
    core.run(inbound_settings.set_inbound, provider_id, {"inbound_group": "Desk",
                                                        "inbound_enabled": on})


def task_by_reference(core, reference) -> dict:
    [task] = [t for t in core.run(queries.list_tasks, None, None, reference)["items"]
              if t["external_reference"] == reference]
    return core.run(queries.task_page, task["id"])


def items(core, provider_id):
    return {(i["ticket"], i["change"]): i for i in core.run(inbound_queue.list_items, provider_id)}


@pytest.mark.postgres
def test_held_while_off_then_applied_in_order_none_lost_none_twice(world):
    core, provider_id = world
    assert enqueue(core, provider_id, opened(core, "T-1"), note("T-1", 5, "Engineer booked"),
                   status("T-1", "Info Needed", "a", message="Which floor?")) == 3
    assert enqueue(core, provider_id, opened(core, "T-1"), note("T-1", 5, "again")) == 0  # repeats
    assert inbound_queue.drain_job(core) == {}  # off: nothing applied
    assert core.run(inbound_settings.inbound_status, provider_id)["inbound_queued"] == 3

    enable(core, provider_id)
    inbound_queue.drain_job(core)
    inbound_queue.drain_job(core)  # a second run finds nothing to do
    page = task_by_reference(core, "T-1")
    kinds = [(e["request_type"], e["direction"]) for e in page["exchanges"]]
    assert kinds == [("New Ticket", "In"), ("Update", "In"), ("Reassigned", "In")]
    texts = [n["text"] for n in page["notes"]]
    assert any("at 2026-12-01T08:00:00Z" in t for t in texts)  # the provider's creation time
    assert "Engineer booked" in texts
    assert any("Info Needed" in t and "Which floor?" in t for t in texts)
    assert page["task"]["solution"] is None and page["task"]["group"] == "Desk"
    assert {i["status"] for i in items(core, provider_id).values()} == {"done"}


@pytest.mark.postgres
def test_work_completed_returns_the_solution_and_a_close_only_adds_history(world):
    core, provider_id = world
    enable(core, provider_id)
    enqueue(core, provider_id, opened(core, "T-2"),
            status("T-2", "Work completed", "a", resolution="Replaced the fuser"),
            status("T-2", "Closed", "b", closed=True))
    inbound_queue.drain_job(core)
    page = task_by_reference(core, "T-2")
    assert page["task"]["solution"] == "Replaced the fuser"
    assert page["task"]["solution_pending"] is True
    assert page["task"]["status"] == "open"  # the provider closing does not close it here
    assert any("closed its ticket T-2" in n["text"] for n in page["notes"])
    assert [e["request_type"] for e in page["exchanges"]] == ["New Ticket", "Reassigned"]


@pytest.mark.postgres
def test_one_bad_item_goes_to_the_error_report_and_the_rest_go_on(world):
    core, provider_id = world
    enable(core, provider_id)
    bad = {"ticket_ref": "T-9", "change_key": "opened", "kind": "new_ticket",
           "payload": {"reference": "T-9", "title": "   "}}  # no title: cannot be opened
    long_note = "x" * 150_000  # longer than our limits: cut, never refused
    enqueue(core, provider_id, bad, opened(core, "T-3"), note("T-3", 1, long_note),
            status("T-3", "Waiting on Vendor", "a"), note("T-404", 1, "ticket unknown here"))
    inbound_queue.drain_job(core)
    found = items(core, provider_id)
    assert found[("T-9", "opened")]["status"] == "error"
    assert found[("T-404", "note:1")]["status"] == "skipped"
    assert found[("T-3", "note:1")]["status"] == "done"
    assert found[("T-3", "status:Waiting on Vendor:a")]["status"] == "done"
    page = task_by_reference(core, "T-3")
    cut = next(n["text"] for n in page["notes"] if n["text"].startswith("xxx"))
    assert len(cut) <= 100_000 and "150000 characters" in cut
    assert any("Waiting on Vendor" in n["text"] for n in page["notes"])  # unknown status: noted
    [report] = core.run(psa_reports.provider_errors, provider_id)
    assert report["operation"] == "New Ticket" and "T-9" in report["message"]
    # replayed after the cause is gone: applied once
    core.run(inbound_queue.replay_item, provider_id, report["inbound_item_id"])
    assert items(core, provider_id)[("T-9", "opened")]["status"] == "pending"


@pytest.mark.postgres
def test_a_site_linked_to_a_removed_customer_and_a_merge_of_the_auto_created_one(world):
    core, provider_id = world
    enable(core, provider_id)
    enqueue(core, provider_id, opened(core, "T-5", site="S-7", site_name="York Shop"))
    inbound_queue.drain_job(core)
    auto = next(c for c in core.run(customers.list_customers)
                if c["name"] == "[Carrier AUTO CREATED] York Shop")
    acme = next(c for c in core.run(customers.list_customers) if c["name"] == "ACME")
    core.run(customers.merge_customers, auto["id"], acme["id"])  # its site link moves along
    enqueue(core, provider_id, opened(core, "T-6", site="S-7", site_name="York Shop"))
    inbound_queue.drain_job(core)
    assert task_by_reference(core, "T-6")["task"]["customer"] == "ACME"


@pytest.mark.postgres
def test_changes_on_a_closed_task_are_skipped_with_the_reason(world):
    core, provider_id = world
    enable(core, provider_id)
    enqueue(core, provider_id, opened(core, "T-7"))
    inbound_queue.drain_job(core)
    task_id = task_by_reference(core, "T-7")["task"]["id"]
    core.run(tasks.close_task, task_id, "Fixed here")
    enqueue(core, provider_id, note("T-7", 3, "late note"), status("T-7", "Closed", "z",
                                                                  closed=True))
    inbound_queue.drain_job(core)
    found = items(core, provider_id)
    assert found[("T-7", "note:3")]["status"] == "skipped"
    assert "closed" in found[("T-7", "status:Closed:z")]["error"]
    assert core.run(psa_reports.provider_errors, provider_id) == []


def test_soap_ticket_and_its_repeat_are_one_ticket(core, seeded):
    provider_id = seeded["provider"]["id"]
    enable(core, provider_id)
    ticket = NewTicket(reference="R-1", title="Leak")
    first = core.run(provider_tickets.create_external_ticket, "Carrier", ticket)
    again = core.run(provider_tickets.create_external_ticket, "Carrier", ticket)
    assert first["status"] == "accepted" and again == {**first, "status": "duplicate"}
    assert core.run(queries.list_tasks, None, None, "Leak")["total"] == 1
