"""The background worker: outbox delivery, timers and periodic jobs. Restart-safe: all state
is in the database.

Leases follow the worker's life (engine.services.leases): while the worker holds outbox rows
or runs a job, its heartbeat thread renews their short leases every quarter lease. A killed
worker stops renewing and its work is taken over one lease length later. A living one keeps
its work: it starts a delivery only while its leases were confirmed less than half a lease
ago, so a worker cut off from the database stops before another could take its rows over,
and a worker stuck far beyond any transport timeout stops renewing (its work moves on).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager

from engine import delivery_pool
from engine.adapters.providers import Delivery
from engine.exceptions import DeliveryError
from engine.services import leases, mail, outbox, processes, schedule

log = logging.getLogger(__name__)

DELIVERY_LIMIT = 300.0  # seconds: far beyond any channel's timeouts; longer means stuck


class Worker:
    def __init__(self, core, name: str | None = None, batch: int = 20) -> None:
        self.core = core
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.batch = batch
        self.lease = core.settings.worker_lease_seconds
        self._jobs_registered = False
        self._held = 0  # outbox rows and jobs leased and not yet finished
        self._confirmed = 0.0  # monotonic time the leases were last known to be ours
        self._activity: tuple[str, float, float] | None = None  # what, since, limit
        self._stuck_reported = False
        self._stop = threading.Event()
        self._in_flight: dict[int, float] = {}  # outbox rows being sent: since when

    # -- leases
    def renew_leases(self) -> bool:
        """One heartbeat: renews the leases this worker holds (none held: nothing to do)."""
        if not self._held or self._stuck():
            return False
        previous, started = self._confirmed, time.monotonic()
        self.core.run(leases.renew, self.name)
        if time.monotonic() - previous >= self.lease * 0.9:
            # Renewed too late: the leases may have lapsed and been taken over meanwhile.
            log.warning("worker %s renewed its leases too late; it gives its work back",
                        self.name)
            return False
        self._confirmed = started
        return True

    def _leases_fresh(self) -> bool:
        return time.monotonic() - self._confirmed < self.lease / 2

    def _stuck(self) -> bool:
        now = time.monotonic()
        if self._activity is not None:
            what, since, limit = self._activity
        elif self._in_flight:
            item_id, since = min(self._in_flight.items(), key=lambda pair: pair[1])
            what, limit = f"delivery of outbox item {item_id}", DELIVERY_LIMIT
        else:
            return False
        if now - since <= limit:
            return False
        if not self._stuck_reported:
            self._stuck_reported = True
            log.error("worker %s stuck in %s for more than %g s: its leases are no longer "
                      "renewed and its work will be taken over", self.name, what, limit)
        return True

    @contextmanager
    def _doing(self, what: str, limit: float):
        self._activity, self._stuck_reported = (what, time.monotonic(), limit), False
        try:
            yield
        finally:
            self._activity = None

    def heartbeat(self, stop: threading.Event) -> None:
        """Renews this worker's leases every quarter lease until `stop` is set."""
        while not stop.wait(self.lease / 4):
            try:
                self.renew_leases()
            except Exception as exc:  # the database is away: deliveries pause (fencing)
                log.warning("worker %s could not renew its leases: %s", self.name, exc)

    # -- outbox
    def deliver(self, item: dict) -> tuple[dict | None, DeliveryError | None]:
        """One delivery attempt (in the worker's thread or its delivery pool)."""
        self._in_flight[item["id"]] = time.monotonic()  # until the channel returns: maybe sent
        try:
            channel = self.core.channels.get(item["channel"])
            delivery = Delivery(outbox_id=item["id"], exchange_id=item.get("exchange_id"),
                                attempt=item.get("attempts", 0) + 1,
                                connection_stamp=item.get("connection_stamp"))
            outcome = channel.deliver(item["message"], delivery), None
        except DeliveryError as exc:
            outcome = None, exc
        except Exception as exc:  # a channel bug must not stop the worker
            log.exception("delivery of outbox item %s failed", item["id"])
            outcome = None, DeliveryError(f"{type(exc).__name__}: {exc}")
        self._in_flight.pop(item["id"], None)
        if outcome[1] is not None:
            log.warning("delivery of outbox item %s failed: %s", item["id"], outcome[1].message)
        return outcome

    def deliver_due(self) -> int:
        started = time.monotonic()
        claimed = self.core.run(outbox.claim_due, self.name, self.batch)
        self._confirmed, self._held = started, len(claimed)
        self._stuck_reported = False
        try:
            size = delivery_pool.width(self.core, claimed)
            if size > 1:
                delivery_pool.Round(self, claimed, size).run()
            else:
                self._deliver_one_by_one(claimed)
        finally:
            self._held = 0
        return len(claimed)

    def may_start(self) -> bool:
        """Whether another delivery may start: not stopping, and the leases confirmed lately."""
        return not self._stop.is_set() and self._leases_fresh()

    def _deliver_one_by_one(self, claimed: list[dict]) -> None:
        for done, item in enumerate(claimed):
            if not self.may_start():
                self.give_back(len(claimed) - done)
                break
            result, error = self.deliver(item)
            self.core.run(outbox.record_outcome, item["id"], self.name, result, error)
            self._held -= 1

    def record(self, outcomes: list[tuple]) -> None:
        """Records outcomes in one transaction; if that fails, one by one (each its own)."""
        try:
            self.core.run(outbox.record_outcomes, self.name, outcomes)
        except Exception:
            log.warning("recording %d outcomes together failed; one by one", len(outcomes),
                        exc_info=True)
            for outcome in outcomes:
                self.core.run(outbox.record_outcomes, self.name, [outcome])

    def recorded(self, count: int) -> None:
        self._held -= count

    def give_back(self, count: int, keep: list[int] | None = None) -> None:
        log.info("worker %s gives back %d outbox rows undelivered", self.name, count)
        self.core.run(leases.release, self.name, keep or ())

    # -- timers and jobs
    def fire_timers(self) -> int:
        return self.core.run(processes.fire_due_timers, self.core.clock.now())

    def run_jobs(self) -> int:
        """Runs the periodic jobs that are due (engine.jobs), each by one worker of many."""
        jobs = self.core.jobs
        if not jobs:
            return 0
        if not self._jobs_registered:
            self.core.run(schedule.register, jobs)
            self._jobs_registered = True
        by_name = {job.name: job for job in jobs}
        names = self.core.run(schedule.claim_due, jobs, self.name)
        for name in names:
            self._run_job(by_name[name])
        return len(names)

    def _run_job(self, job) -> None:
        self._held += 1
        self._confirmed = time.monotonic()
        try:
            with self._doing(f"job {job.name}", job.lease.total_seconds()):
                result, error = job.run(self.core), None
        except Exception as exc:  # a failing job is recorded and retried at its next run
            log.exception("job %s failed", job.name)
            result, error = {}, f"{type(exc).__name__}: {exc}"
        finally:
            self._held -= 1
        self.core.run(schedule.finish, job, self.name, result, error)

    # -- the loop
    def run_once(self) -> int:
        """One pass over inbound mail, due deliveries, timers and jobs; returns the work done."""
        return (mail.process_inbox(self.core) + self.deliver_due() + self.fire_timers()
                + self.run_jobs())

    def run_forever(self, stop: threading.Event, idle_wait: float = 1.0) -> None:
        log.info("worker %s started", self.name)
        self._stop = stop
        beating = threading.Thread(target=self.heartbeat, args=(stop,), daemon=True,
                                   name="liaison-heartbeat")
        beating.start()
        try:
            while not stop.is_set():
                try:
                    busy = self.run_once()
                except Exception:
                    log.exception("worker pass failed; retrying shortly")
                    busy = 0
                if not busy:
                    self.core.work_available.wait(idle_wait)
                    self.core.work_available.clear()
        finally:  # stopped, or interrupted (Ctrl-C): what it still holds goes back at once
            stop.set()
            beating.join(self.lease)
            self._release_quietly()
        log.info("worker %s stopped", self.name)

    def _release_quietly(self) -> None:
        try:
            self.core.run(leases.release, self.name, list(self._in_flight))
        except Exception as exc:  # the leases run out by themselves
            log.warning("worker %s could not give its leases back: %s", self.name, exc)


def start_inline(core, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=Worker(core).run_forever, args=(stop,), name="liaison-worker",
                              daemon=True)
    thread.start()
    return thread
