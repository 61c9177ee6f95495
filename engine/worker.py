"""The background worker: outbox delivery and timers. Restart-safe: all state is in the DB."""

from __future__ import annotations

import logging
import os
import socket
import threading

from engine.adapters.providers import Delivery
from engine.exceptions import DeliveryError
from engine.services import mail, outbox, processes, schedule

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, core, name: str | None = None, batch: int = 20) -> None:
        self.core = core
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.batch = batch
        self._jobs_registered = False

    def deliver(self, item: dict) -> tuple[dict | None, DeliveryError | None]:
        try:
            channel = self.core.channels.get(item["channel"])
            delivery = Delivery(outbox_id=item["id"], exchange_id=item.get("exchange_id"),
                                attempt=item.get("attempts", 0) + 1)
            return channel.deliver(item["message"], delivery), None
        except DeliveryError as exc:
            return None, exc
        except Exception as exc:  # a channel bug must not stop the worker
            log.exception("delivery of outbox item %s failed", item["id"])
            return None, DeliveryError(f"{type(exc).__name__}: {exc}")

    def deliver_due(self) -> int:
        claimed = self.core.run(outbox.claim_due, self.name, self.batch)
        for item in claimed:
            result, error = self.deliver(item)
            if error is not None:
                log.warning("delivery of outbox item %s failed: %s", item["id"], error.message)
            self.core.run(outbox.record_outcome, item["id"], self.name, result, error)
        return len(claimed)

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
            job = by_name[name]
            try:
                result, error = job.run(self.core), None
            except Exception as exc:  # a failing job is recorded and retried at its next run
                log.exception("job %s failed", name)
                result, error = {}, f"{type(exc).__name__}: {exc}"
            self.core.run(schedule.finish, job, self.name, result, error)
        return len(names)

    def run_once(self) -> int:
        """One pass over inbound mail, due deliveries, timers and jobs; returns the work done."""
        return (mail.process_inbox(self.core) + self.deliver_due() + self.fire_timers()
                + self.run_jobs())

    def run_forever(self, stop: threading.Event, idle_wait: float = 1.0) -> None:
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying shortly")
                busy = 0
            if not busy:
                self.core.work_available.wait(idle_wait)
                self.core.work_available.clear()
        log.info("worker %s stopped", self.name)


def start_inline(core, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=Worker(core).run_forever, args=(stop,), name="liaison-worker",
                              daemon=True)
    thread.start()
    return thread
