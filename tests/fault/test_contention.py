"""Many writers on one task through two `liaison serve` processes on PostgreSQL: SOAP updates
from the provider race REST updates from agents. Every update lands exactly once (clients
retry with the same requestId / Idempotency-Key), every refusal is typed, no traceback."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.services import admin, queries, tasks
from engine.services.inbound import acknowledge_external
from tests.conftest import make_core, seed
from tests.fakes import FakeMailer
from tests.fault.harness import Client, Cluster, tracebacks

pytestmark = pytest.mark.slow

UPDATES = 60  # of each kind
UPDATE = "ProcessInstanceTaskExternalUpdateMessage"


def test_soap_and_rest_writers_on_one_task_lose_nothing_and_fail_typed(tmp_path, postgres_url):
    core = make_core(postgres_url, tmp_path, FakeMailer())
    try:
        seeded = seed(core)
        task = core.run(tasks.create_task, seeded["ticket"]["id"], "Flapping link",
                        group="Carrier Group")
        core.run(acknowledge_external, task["id"], "REF-1")
        core.run(admin.create_user, "agent", "agent-password", "admin")
        token = core.run(admin.create_token, "agent")
        # A short lock bound, so that some writers do give up and answer Busy.
        cluster = Cluster(tmp_path, postgres_url, extra_env={"LIAISON_LOCK_TIMEOUT_SECONDS": "0.005"})
        cluster.add_server("server1")
        cluster.add_server("server2")
        cluster.start_all()
        client = Client(cluster, token, deadline=240)
        try:
            calls = [lambda n=n: client.soap(UPDATE, {"taskId": task["id"],
                                                      "message": f"provider {n}",
                                                      "requestId": f"upd-{n}"},
                                             seeded["provider"]) for n in range(UPDATES)]
            calls += [lambda n=n: client.post_json(f"/api/v1/tasks/{task['id']}/updates",
                                                   {"text": f"agent {n}"}, key=f"agent-{n}")
                      for n in range(UPDATES)]
            with ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(lambda call: call(), calls))
            logs = cluster.log_text()
        finally:
            cluster.stop()
        notes = Counter(n["text"] for n in core.run(queries.task_page, task["id"])["notes"])
    finally:
        core.close()

    print(f"{len(answers)} writes, {client.retries} retried after a typed refusal, "
          f"{logs.count('SOAP request not applied')} SOAP Busy/ConcurrentUpdate faults logged")
    lost = [f"{who} {n}" for who in ("provider", "agent") for n in range(UPDATES)
            if notes[f"{who} {n}"] != 1]
    assert lost == []
    assert client.untyped_faults == []
    assert tracebacks(logs) == []
    assert client.retries > 0, "no writer was ever refused: the test proves nothing"
