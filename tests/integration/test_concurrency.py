"""Concurrent writers on one task and several workers on one outbox (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from engine.services import outbox, queries, tasks
from engine.services.inbound import acknowledge_external, reassign_external, update_external
from engine.worker import Worker
from tests.conftest import seed


def race(*calls):
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, c) for c in calls]]


def test_two_writers_on_one_task_lose_no_update(any_core):
    core = any_core
    data = seed(core)
    task = core.run(tasks.create_task, data["ticket"]["id"], "Flapping link",
                    group="Carrier Group")
    core.run(acknowledge_external, task["id"], "REF-1")

    for round_ in range(5):
        race(lambda r=round_: core.run(update_external, task["id"], f"provider note {r}"),
             lambda r=round_: core.run(tasks.add_update, task["id"], f"agent note {r}"),
             lambda r=round_: core.run(reassign_external, task["id"], solution=f"fix {r}"))

    page = core.run(queries.task_page, task["id"])
    texts = [n["text"] for n in page["notes"]]
    for r in range(5):
        assert f"provider note {r}" in texts and f"agent note {r}" in texts
    kinds = [e["request_type"] for e in page["exchanges"]]
    assert kinds.count("Update") == 10 and kinds.count("Reassigned") == 5
    assert page["task"]["solution"].startswith("fix ")
    assert page["task"]["solution_pending"] is True


def test_concurrent_workers_never_deliver_one_row_twice(any_core, mailer):
    core = any_core
    data = seed(core)
    for n in range(12):
        core.run(tasks.create_task, data["ticket"]["id"], f"task {n}", group="Carrier Group")

    workers = [Worker(core, name=f"w{i}", batch=3) for i in range(3)]

    def drain(worker):
        while worker.deliver_due():
            pass

    race(*[lambda w=w: drain(w) for w in workers])
    ids = [m["Message-ID"] for m in mailer.sent]
    assert len(ids) == 12 and len(set(ids)) == 12


def test_claims_are_exclusive_between_two_workers(any_core):
    core = any_core
    data = seed(core)
    for n in range(6):
        core.run(tasks.create_task, data["ticket"]["id"], f"t{n}", group="Carrier Group")
    first, second = race(lambda: core.run(outbox.claim_due, "a", 6),
                         lambda: core.run(outbox.claim_due, "b", 6))
    ids_a, ids_b = {i["id"] for i in first}, {i["id"] for i in second}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 6


def test_a_claim_leases_no_more_than_its_batch(any_core):
    # PostgreSQL planned the claim's `IN (… LIMIT n FOR UPDATE SKIP LOCKED)` as a nested loop
    # that ran the candidates again for each row (on a table whose statistics are not yet
    # gathered): each run skipped the rows just leased, so one claim leased the whole outbox
    # and a second worker found nothing to do.
    core = any_core
    data = seed(core)
    for n in range(12):
        core.run(tasks.create_task, data["ticket"]["id"], f"t{n}", group="Carrier Group")
    claims = [core.run(outbox.claim_due, worker, 5) for worker in ("a", "b", "c")]
    ids = [[item["id"] for item in claim] for claim in claims]
    assert [len(claim) for claim in ids] == [5, 5, 2]
    assert ids[0] + ids[1] + ids[2] == sorted(ids[0] + ids[1] + ids[2])  # oldest first
    assert Worker(core, name="d", batch=5).deliver_due() == 0  # all 12 leased
