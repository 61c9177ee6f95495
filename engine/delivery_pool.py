"""One worker's round of outbox deliveries on a small thread pool (engine.worker).

Channels bound by a remote's latency (ConnectWise over HTTP) say how many of their calls may
be in flight at once (`concurrency`; others 1, never beside another of theirs). The worker's
thread starts calls, and while they are on their way records the outcomes that came back,
several in one transaction. Deliveries of one task keep their order: a task's next delivery
starts only once the outcome of its previous one is committed (so a created ticket's
reference is stored before its notes go out, and a crash never finds a later delivery sent
while an earlier one is unrecorded).
"""

from __future__ import annotations

from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

POOL_LIMIT = 4  # deliveries in flight at once per worker, at most


def order_key(item: dict) -> object:
    """Deliveries of one task keep their order; an item without a task stands alone."""
    return item.get("task_id") or ("item", item["id"])


def limit_of(core, channel: str) -> int:
    return max(1, int(getattr(core.channels.get(channel), "concurrency", 1)))


def width(core, claimed: list[dict]) -> int:
    """How many deliveries of `claimed` may be in flight at once (1: one by one)."""
    if len(claimed) < 2:
        return 1
    channels = Counter(item["channel"] for item in claimed)
    wanted = sum(min(limit_of(core, name), count) for name, count in channels.items())
    return max(1, min(wanted, POOL_LIMIT, len({order_key(item) for item in claimed})))


class Round:
    """Delivers `claimed` with `worker.deliver` on up to `size` threads; `worker.record`
    stores a list of outcomes (`worker.recorded(n)` is told in this thread);
    `worker.may_start()` says whether another delivery may start (else
    `worker.give_back(count, keep)` returns the rest)."""

    def __init__(self, worker, claimed: list[dict], size: int) -> None:
        self.worker, self.size = worker, size
        chains: dict[object, deque] = {}
        for item in claimed:
            chains.setdefault(order_key(item), deque()).append(item)
        self.ready = deque(chains.values())
        self.running: dict = {}  # future -> (chain, item)
        self.busy: Counter = Counter()  # calls in flight per channel
        self.left = len(claimed)  # not yet recorded
        self.sent: set[int] = set()  # started and not yet recorded: never given back
        self.stopping = False

    def run(self) -> None:
        """Until every claimed row is recorded (or given back): deliveries on `size` threads,
        outcomes recorded by one more thread, which takes all outcomes that came back since
        it last began (one writer: SQLite has one anyway, and on PostgreSQL a second one
        measured no faster, the process's CPU being the bound)."""
        recorders = 1
        returned: list[tuple] = []  # (chain, item, result, error) not yet given to a recorder
        recording: dict = {}  # future -> what it records
        with ThreadPoolExecutor(self.size, thread_name_prefix="liaison-delivery") as pool, \
                ThreadPoolExecutor(recorders, thread_name_prefix="liaison-record") as records:
            try:
                self._start(pool)
                while self.running or recording or returned:
                    if returned and len(recording) < recorders:
                        outcomes = [(item["id"], result, error)
                                    for _, item, result, error in returned]
                        recording[records.submit(self.worker.record, outcomes)] = returned
                        returned = []
                    done, _ = wait([*self.running, *recording], return_when=FIRST_COMPLETED)
                    for future in done:
                        if future in self.running:
                            chain, item = self.running.pop(future)
                            self.busy[item["channel"]] -= 1
                            returned.append((chain, item, *future.result()))
                        else:
                            self._recorded(recording.pop(future), future)
                    self._start(pool)  # other tasks' calls go on while outcomes are recorded
            finally:
                wait([*self.running, *recording])  # after a failure: what is on its way ends

    def _recorded(self, finished: list[tuple], future) -> None:
        future.result()  # a failure to record stops the round (the rows run out, are retaken)
        self.sent.difference_update(item["id"] for _, item, _, _ in finished)
        self.left -= len(finished)
        self.worker.recorded(len(finished))
        if not self.stopping:  # each task's next delivery, now that its previous is stored
            self.ready.extend(chain for chain, *_ in finished if chain)

    def _start(self, pool) -> None:
        waiting = []  # chains whose channel has as many calls in flight as it allows
        while self.ready and len(self.running) < self.size and not self.stopping:
            chain = self.ready.popleft()
            channel = chain[0]["channel"]
            if self.busy[channel] >= limit_of(self.worker.core, channel):
                waiting.append(chain)
                continue
            if not self.worker.may_start():
                self.stopping = True
                self.worker.give_back(self.left - len(self.sent), list(self.sent))
                break
            item = chain.popleft()
            self.sent.add(item["id"])
            self.busy[channel] += 1
            self.running[pool.submit(self.worker.deliver, item)] = (chain, item)
        self.ready.extendleft(reversed(waiting))
