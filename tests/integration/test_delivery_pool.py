"""A worker keeps several calls of a latency-bound channel in flight (engine.delivery_pool):
other tasks' deliveries overlap, one task's deliveries keep their order (the next starts
only once the previous outcome is committed), a channel that does not say it may run
concurrently never has two calls at once, and a worker whose leases went unconfirmed starts
nothing more and gives the rest back."""

from __future__ import annotations

import threading
import time

from engine.services import outbox, queries, tasks
from engine.worker import Worker
from tests.conftest import make_core, seed
from tests.fakes import FakeMailer


class SlowChannel:
    """The e-mail channel taking `seconds` per call, noting what overlapped."""

    name = "email"

    def __init__(self, real, seconds: float, concurrency: int | None, core=None) -> None:
        self.real, self.seconds, self.core = real, seconds, core
        if concurrency is not None:
            self.concurrency = concurrency
        self.lock = threading.Lock()
        self.in_flight = self.most = 0
        self.calls: list[tuple[int, str]] = []  # (task id, request type) in start order
        self.recorded_before: list[bool] = []  # for each Update: its Submit already recorded

    def render(self, provider, request):
        message = self.real.render(provider, request)
        return {**message, "_task": request.task["id"], "_type": request.request_type}

    def deliver(self, message, delivery):
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.calls.append((message["_task"], message["_type"]))
        if message["_type"] == "Update" and self.core is not None:
            exchanges = self.core.run(queries.exchanges_of_task, message["_task"])
            submitted = [e for e in exchanges if e["request_type"] == "Submit Request"]
            self.recorded_before.append(submitted[0]["status"] == "delivered")
        time.sleep(self.seconds)
        with self.lock:
            self.in_flight -= 1
        return {"sent": True}


def started(tmp_path, sqlite_url, seconds: float, concurrency: int | None, **settings):
    mailer = FakeMailer()
    core = make_core(sqlite_url, tmp_path, mailer, **settings)
    channel = SlowChannel(core.channels.get("email"), seconds, concurrency, core)
    core.channels.register(channel)
    return core, channel, seed(core)


def new_tasks(core, data, count: int) -> list[dict]:
    return [core.run(tasks.create_task, data["ticket"]["id"], f"t{n}", group="Carrier Group")
            for n in range(count)]


def delivered(core, task_ids) -> set[str]:
    return {e["status"] for task_id in task_ids
            for e in core.run(queries.exchanges_of_task, task_id) if e["direction"] == "Out"}


def test_calls_of_different_tasks_overlap(tmp_path, sqlite_url):
    core, channel, data = started(tmp_path, sqlite_url, 0.2, concurrency=4)
    try:
        made = new_tasks(core, data, 8)
        began = time.monotonic()
        assert Worker(core, batch=20).deliver_due() == 8
        elapsed = time.monotonic() - began
        assert channel.most == 4  # never more than the channel allows
        assert elapsed < 8 * 0.2 / 2, elapsed  # one by one would take 1.6 s
        assert delivered(core, [t["id"] for t in made]) == {"delivered"}
    finally:
        core.close()


def test_a_channel_that_does_not_say_so_gets_one_call_at_a_time(tmp_path, sqlite_url):
    core, channel, data = started(tmp_path, sqlite_url, 0.02, concurrency=None)
    try:
        new_tasks(core, data, 4)
        assert Worker(core, batch=20).deliver_due() == 4
        assert channel.most == 1
    finally:
        core.close()


def test_one_tasks_deliveries_keep_their_order_and_wait_for_the_recorded_outcome(
        tmp_path, sqlite_url):
    core, channel, data = started(tmp_path, sqlite_url, 0.05, concurrency=4)
    try:
        made = new_tasks(core, data, 3)
        for task in made:
            core.run(tasks.add_update, task["id"], "More details")
        assert Worker(core, batch=20).deliver_due() == 6
        for task in made:
            kinds = [kind for task_id, kind in channel.calls if task_id == task["id"]]
            assert kinds == ["Submit Request", "Update"], channel.calls
        assert channel.recorded_before == [True, True, True]
        assert channel.most > 1  # the three tasks still went side by side
    finally:
        core.close()


def test_a_worker_whose_leases_went_unconfirmed_starts_nothing_more(tmp_path, sqlite_url):
    # no heartbeat renews: after half a lease the worker may no longer be the holder
    core, channel, data = started(tmp_path, sqlite_url, 0.3, concurrency=2,
                                  worker_lease_seconds=0.4)
    try:
        new_tasks(core, data, 5)
        assert Worker(core, name="w1", batch=5).deliver_due() == 5
        assert len(channel.calls) == 2  # the first two, started at once; then it stopped
        assert len(core.run(outbox.claim_due, "w2", 5)) == 3  # given back, not a lease later
    finally:
        core.close()
