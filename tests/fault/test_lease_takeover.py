"""A worker killed in the middle of a delivery: another worker takes the row over one lease
later (the goal: < 15 s with the default lease of 10 s), and never while the first one lives,
however long its delivery takes."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from engine.services import admin, queries, tasks
from tests.conftest import make_core
from tests.fakes import FakeMailer
from tests.fault.harness import Cluster
from tests.support import wait_for
from webservice.simulator import SimulatedProvider, start_simulator

pytestmark = pytest.mark.slow

TAKEOVER_BOUND = 40.0  # seconds; measured ~ one lease (10 s); the old lease was 5 minutes


class SlowProvider(SimulatedProvider):
    """Holds the first call of each requestId for `hold` seconds; answers repeats at once."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hold = 0.0
        self.calls: list[str] = []
        self.first_call = threading.Event()
        self._seen_lock = threading.Lock()

    def receive(self, operation: str, request: dict) -> dict:
        with self._seen_lock:
            first = request["requestId"] not in self.calls
            self.calls.append(request["requestId"])
        if first:
            self.first_call.set()
            time.sleep(self.hold)
        return super().receive(operation, request)


@pytest.fixture
def provider():
    running = start_simulator("127.0.0.1", 0, SlowProvider(None, None, None))
    yield running
    running.stop()


@pytest.fixture
def setting(tmp_path, provider):
    def prepare(url: str, **env) -> tuple:
        core = make_core(url, tmp_path, FakeMailer())
        core.run(admin.create_provider, "Vendor", "soap", endpoint_url=provider.url)
        core.run(admin.create_group, "Vendor Group", integrated=True, provider="Vendor")
        ticket = core.run(tasks.create_ticket, "Outage")
        cluster = Cluster(tmp_path, url, extra_env=env)
        cluster.add_worker("first")
        cluster.add_worker("second")
        made.append((core, cluster))
        return core, cluster, ticket["id"]

    made: list = []
    yield prepare
    for core, cluster in made:
        cluster.stop()
        core.close()


def submit(core, ticket_id: int) -> int:
    task = core.run(tasks.create_task, ticket_id, "Router dead", group="Vendor Group")
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    return exchange["id"]


def delivered(core, exchange_id: int) -> bool:
    return core.run(queries.exchange_detail, exchange_id)["status"] == "delivered"


def test_a_killed_workers_delivery_is_taken_over_one_lease_later(setting, provider, any_db_url):
    core, cluster, ticket = setting(any_db_url)
    provider.provider.hold = 120.0  # the first worker hangs in the provider's call
    cluster.start("first")
    exchange_id = submit(core, ticket)
    assert provider.provider.first_call.wait(90), "the first worker never called the provider"
    cluster.start("second")
    cluster.wait_worker("second")  # up and looking: the first one's lease keeps it out
    killed = time.monotonic()
    cluster.kill("first")
    wait_for(lambda: delivered(core, exchange_id), timeout=120, interval=0.1)
    takeover = time.monotonic() - killed
    print(f"takeover after SIGKILL: {takeover:.1f} s "
          f"(lease {core.settings.worker_lease_seconds:g} s)")

    assert takeover < TAKEOVER_BOUND
    assert len(provider.provider.calls) == 2  # the killed one's and the second worker's
    assert len(provider.provider.received) == 1  # applied once: the same requestId twice


def test_a_living_workers_slow_delivery_is_never_taken_over(setting, provider, sqlite_url):
    core, cluster, ticket = setting(sqlite_url, LIAISON_WORKER_LEASE_SECONDS="2")
    provider.provider.hold = 7.0  # three and a half leases: the heartbeat must renew it
    cluster.start("first")
    exchange_id = submit(core, ticket)
    assert provider.provider.first_call.wait(90)
    cluster.start("second")
    wait_for(lambda: delivered(core, exchange_id), timeout=60, interval=0.1)

    assert len(provider.provider.calls) == 1
    assert core.run(queries.exchange_detail, exchange_id)["attempts"] == 1
    provider.provider.hold = 0.0
    later = submit(core, ticket)  # and both workers still deliver
    wait_for(lambda: delivered(core, later), timeout=60, interval=0.1)
    assert "Traceback" not in cluster.log_text()


def test_a_worker_stopped_by_ctrl_c_gives_its_rows_back_at_once(setting, provider, sqlite_url):
    """Except the one it was sending: that may have gone out, so it waits for its lease to
    run out and is then taken over as a second attempt, like a crashed worker's."""
    core, cluster, ticket = setting(sqlite_url)
    provider.provider.hold = 120.0
    sending, waiting = submit(core, ticket), submit(core, ticket)
    cluster.start("first")
    assert provider.provider.first_call.wait(90)
    first = cluster.members["first"].process
    first.send_signal(signal.SIGINT)
    assert first.wait(30) != -signal.SIGKILL

    def row(exchange_id):
        return core.run(lambda uow: uow.repo.outbox_for_exchange(exchange_id))

    assert (row(waiting).status, row(waiting).locked_by) == ("pending", None)  # due now
    assert row(sending).locked_by is not None
