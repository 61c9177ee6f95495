"""SQL statements of the batched hot paths (write-path §8), on SQLite and PostgreSQL: the
outbox claims a batch with a fixed number of statements and records several outcomes in one
transaction; provider-opened tickets cost their own INSERTs and a fixed number of reads per
batch. A regression back to per-row reads fails here, not only in bench/connectwise.py and
bench/inbound.py."""

from __future__ import annotations

import pytest

from engine.exceptions import DeliveryError
from engine.services import inbound, inbound_queue, inbound_settings, outbox, queries, tasks
from engine.services.provider_tickets import OPENED, NewTicket
from tests.conftest import seed
from tests.integration.test_statement_counts import check, counting, lock_bound, new_task


@pytest.fixture
def world(any_core):
    data = seed(any_core)
    # warm the process-wide caches (parsed specs by model id), as in a running server
    warm = any_core.run(tasks.create_task, data["ticket"]["id"], "warm-up", "",
                        group="Carrier Group")
    any_core.run(inbound.acknowledge_external, warm["id"], "WARM-1")
    return data


def queued(core, world, count: int) -> list[dict]:
    """`count` new tasks' Submit Requests, claimed by worker w1."""
    ids = {new_task(core, world)["id"] for _ in range(count)}
    return [item for item in core.run(outbox.claim_due, "w1", 100) if item["task_id"] in ids]


def test_a_claim_leases_and_reads_any_number_of_rows_with_two_statements(any_core, world):
    for _ in range(5):
        new_task(any_core, world)
    with counting(any_core.db) as counted:
        claimed = any_core.run(outbox.claim_due, "w1", 100)
    assert len(claimed) == 6  # with the warm-up task's Submit Request
    assert all(item["task_id"] and item["attempts"] == 0 for item in claimed)
    check(counted, 2)  # UPDATE … RETURNING id (the lease), then the rows with their tasks
    assert any_core.run(outbox.claim_due, "w2", 100) == []  # leased: nothing for another


def test_outcomes_of_several_deliveries_are_recorded_together(any_core, world):
    claimed = queued(any_core, world, 4)
    failed = DeliveryError("HTTP 503", retryable=True)
    outcomes = [(item["id"], {"sent": True}, None) for item in claimed[:-1]]
    outcomes.append((claimed[-1]["id"], None, failed))
    with counting(any_core.db) as counted:
        recorded = any_core.run(outbox.record_outcomes, "w1", outcomes)
    assert recorded == len(claimed) == 4
    check(counted, 3)  # the held rows; the outbox rows; their exchanges
    statuses = {e["status"] for item in claimed[:-1]
                for e in any_core.run(queries.exchanges_of_task, item["task_id"])
                if e["direction"] == "Out"}
    assert statuses == {"delivered"}
    [last] = [e for e in any_core.run(queries.exchanges_of_task, claimed[-1]["task_id"])
              if e["direction"] == "Out"]
    assert (last["status"], last["attempts"]) == ("pending", 1)


def test_an_outcome_whose_lease_was_taken_over_is_left_to_the_new_holder(any_core, world):
    claimed = queued(any_core, world, 1)
    recorded = any_core.run(outbox.record_outcomes, "someone-else",
                            [(item["id"], {"sent": True}, None) for item in claimed])
    assert recorded == 0
    assert any_core.run(outbox.claim_due, "w2", 100) == []  # still w1's


def test_created_references_are_acknowledged_in_the_outcomes_transaction(any_core, world):
    claimed = queued(any_core, world, 3)
    outcomes = [(item["id"], {"created": True, "external_reference": f"T-{item['id']}"}, None)
                for item in claimed]
    with counting(any_core.db) as counted:
        any_core.run(outbox.record_outcomes, "w1", outcomes)
    # per task, the acknowledgement's own statements (task, request id, waiting instances,
    # exchange, instance, task update); once: the held rows and the two updates
    check(counted, 3 + 6 * len(claimed) + lock_bound(any_core))
    for item in claimed:
        task = any_core.run(queries.task_detail, item["task_id"])
        kinds = [(e["request_type"], e["direction"])
                 for e in any_core.run(queries.exchanges_of_task, item["task_id"])]
        assert ("Acknowledgement", "In") in kinds, kinds
        assert task["external_reference"] == f"T-{item['id']}"


def test_provider_opened_tickets_cost_their_inserts_and_a_few_reads_per_batch(any_core, world):
    provider_id = world["provider"]["id"]
    any_core.run(inbound_settings.set_inbound, provider_id,
                 {"inbound_group": "Desk", "inbound_enabled": True})

    def queue(refs):
        changes = [{"ticket_ref": ref, "change_key": OPENED, "kind": "new_ticket",
                    "payload": NewTicket(reference=ref, title=f"Alarm {ref}",
                                         site=f"S-{n % 2}", site_name=f"Site {n % 2}",
                                         device=f"D-{n % 3}",
                                         device_details={"name": f"dev {n % 3}"}).as_payload()}
                   for n, ref in enumerate(refs)]
        def store(uow):
            inbound_queue.enqueue(uow, provider_id, changes, "poll")
            uow.commit()

        any_core.run(store)

    queue(["W-1", "W-2", "W-3"])  # the sites, devices and AUTO CREATED customers exist now
    assert inbound_queue.drain(any_core) == {"done": 3}
    refs = [f"P-{n}" for n in range(10)]
    queue(refs)
    with counting(any_core.db) as counted:
        assert inbound_queue.drain(any_core) == {"done": len(refs)}
    inserts = [k for k in counted.kinds() if k.startswith("INSERT")]
    # a ticket, a task, a history note, a New Ticket/In exchange each, and the link to the
    # provider's ticket (queued here without a poll, which would have made the link)
    assert len(inserts) == 5 * len(refs), counted.kinds()
    # reads and updates once per batch: pending items; the items; provider and its inbound
    # row; sites, devices, links (with each site's customer, each device's asset joined);
    # the items' and the links' updates
    assert len(counted.statements) - len(inserts) <= 10, counted.kinds()  # 9 today
