"""Outbox delivery: retries with backoff, failure after the last attempt, replay; timers."""

from __future__ import annotations

import time

import pytest

from engine.exceptions import DeliveryError
from engine.services import leases, outbox, queries, tasks
from engine.worker import Worker
from tests.conftest import make_core, seed
from tests.fakes import FakeClock, FakeMailer


@pytest.fixture
def timed(tmp_path, sqlite_url):
    clock, mailer = FakeClock(), FakeMailer()
    core = make_core(sqlite_url, tmp_path, mailer, clock=clock, delivery_attempts=3)
    core.settings = core.settings.with_overrides(delivery_backoff_seconds=10.0)
    yield core, clock, mailer
    core.close()


def submit(core):
    data = seed(core)
    return core.run(tasks.create_task, data["ticket"]["id"], "Swap disk", group="Carrier Group")


def test_failed_delivery_is_retried_with_backoff_then_marked_failed_and_replayed(timed):
    core, clock, mailer = timed
    task = submit(core)
    worker = Worker(core)
    mailer.fail_next = 3

    worker.deliver_due()
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    assert (exchange["status"], exchange["attempts"]) == ("pending", 1)
    assert "refused" in exchange["error"]
    assert worker.deliver_due() == 0  # backing off: not due yet

    clock.advance(seconds=11)
    worker.deliver_due()
    clock.advance(seconds=21)
    worker.deliver_due()
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    assert (exchange["status"], exchange["attempts"]) == ("failed", 3)
    assert mailer.sent == []

    core.run(outbox.replay_exchange, exchange["id"])
    worker.deliver_due()
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    assert exchange["status"] == "delivered"
    assert len(mailer.sent) == 1


def test_escalation_timer_adds_a_note_and_keeps_waiting(timed):
    core, clock, _ = timed
    task = submit(core)
    worker = Worker(core)
    clock.advance(hours=3, minutes=59)
    worker.fire_timers()
    assert not [n for n in core.run(queries.task_page, task["id"])["notes"]
                if n["kind"] == "process"]

    clock.advance(minutes=2)
    assert worker.fire_timers() == 1
    page = core.run(queries.task_page, task["id"])
    [note] = [n for n in page["notes"] if n["kind"] == "process"]
    assert "acknowledg" in note["text"].lower()
    [instance] = page["instances"]
    assert instance["status"] == "waiting"  # the escalation does not stop the wait
    assert worker.fire_timers() == 0  # fires once


def test_delivery_survives_a_worker_that_died_holding_the_lease(timed):
    core, clock, mailer = timed
    task = submit(core)
    claimed = core.run(outbox.claim_due, "dead-worker")  # claimed, then the process died
    assert len(claimed) == 1
    lease = core.settings.worker_lease_seconds
    clock.advance(seconds=lease - 1)
    assert Worker(core, name="w2").deliver_due() == 0  # the lease still holds
    clock.advance(seconds=2)  # one lease after the last sign of life, not minutes
    assert Worker(core, name="w2").deliver_due() == 1
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    assert exchange["status"] == "delivered" and len(mailer.sent) == 1


def test_a_living_workers_renewed_lease_is_never_taken_over(timed):
    core, clock, mailer = timed
    submit(core)
    assert len(core.run(outbox.claim_due, "w1")) == 1
    lease = core.settings.worker_lease_seconds
    for _ in range(5):  # w1 is alive, its delivery slow: its heartbeat renews the lease
        clock.advance(seconds=lease * 0.75)
        assert core.run(leases.renew, "w1") == 1
        assert Worker(core, name="w2").deliver_due() == 0
    clock.advance(seconds=lease + 1)  # w1 died after its last heartbeat
    assert Worker(core, name="w2").deliver_due() == 1
    assert len(mailer.sent) == 1


class RecordingChannel:
    """The e-mail channel, noting which attempt each delivery says it is."""

    name = "email"

    def __init__(self, real) -> None:
        self.real, self.attempts = real, []

    def render(self, provider, request):
        return self.real.render(provider, request)

    def deliver(self, message, delivery):
        self.attempts.append(delivery.attempt)
        return self.real.deliver(message, delivery)


def test_a_takeover_counts_the_dead_workers_attempt(timed):
    """It may have sent: channels that cannot deduplicate by key look before they repeat."""
    core, clock, mailer = timed
    channel = RecordingChannel(core.channels.get("email"))
    core.channels.register(channel)
    task = submit(core)
    core.run(outbox.claim_due, "dead-worker")
    clock.advance(seconds=core.settings.worker_lease_seconds + 1)
    Worker(core, name="heir").deliver_due()
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    assert channel.attempts == [2] and exchange["attempts"] == 2
    assert exchange["status"] == "delivered"


class SlowMailer(FakeMailer):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send(self, message) -> None:
        time.sleep(self.seconds)
        super().send(message)


def test_a_worker_whose_leases_went_unconfirmed_gives_its_work_back(tmp_path, sqlite_url):
    mailer = SlowMailer(0.3)
    core = make_core(sqlite_url, tmp_path, mailer, worker_lease_seconds=0.4)
    try:
        data = seed(core)
        for n in range(3):
            core.run(tasks.create_task, data["ticket"]["id"], f"t{n}", group="Carrier Group")
        # no heartbeat renews: after half a lease the worker may no longer be the holder,
        # so it starts no further delivery and gives the rest back at once
        assert Worker(core, name="w1", batch=3).deliver_due() == 3
        assert len(mailer.sent) == 1
        assert core.run(outbox.claim_due, "w2", 3) != []  # free now, not a lease later
    finally:
        core.close()


class RateLimitedChannel:
    """A provider that answers 429 with Retry-After once, then accepts."""

    name = "email"

    def __init__(self, real) -> None:
        self.real, self.calls = real, 0

    def render(self, provider, request):
        return self.real.render(provider, request)

    def deliver(self, message, delivery):
        self.calls += 1
        if self.calls == 1:
            raise DeliveryError("HTTP 429: slow down", retryable=True, retry_after=120)
        return self.real.deliver(message, delivery)


def test_a_retry_after_is_honoured_before_the_next_attempt(timed):
    core, clock, mailer = timed
    channel = RateLimitedChannel(core.channels.get("email"))
    core.channels.register(channel)
    task = submit(core)
    worker = Worker(core)
    assert worker.deliver_due() == 1
    clock.advance(seconds=60)  # the backoff (10 s) is over, the Retry-After is not
    assert worker.deliver_due() == 0
    clock.advance(seconds=61)
    assert worker.deliver_due() == 1
    [exchange] = core.run(queries.exchanges_of_task, task["id"])
    assert (exchange["status"], exchange["attempts"], len(mailer.sent)) == ("delivered", 2, 1)
