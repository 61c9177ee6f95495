"""Scale-out on PostgreSQL: throughput with 1 server process + 1 worker, then with 2 + 2.

Servers: `liaison serve --workers N` (gunicorn, N processes, 8 threads each); outbox
delivery by N `liaison worker` processes (LIAISON_WORKERS_INLINE=0); one database.
Load: one client process, 8 keep-alive connections at once, drawing requests from one queue.
- acknowledgements/s: SOAP acknowledgements (PasswordDigest, fresh nonce) to tasks waiting
  for them (full path: auth, nonce, task, exchange, BPMN message, commit);
- events/s: new assignments through REST (`POST /api/v1/tickets/<id>/tasks` for an
  integrated group: process started, Submit Request exchange + outbox row, committed);
- deliveries/s: then the servers stop and 1 or 2 `liaison worker` processes drain the outbox
  those events filled (leases by compare-and-set with SKIP LOCKED; e-mail written to disk),
  from the first delivery to the last (the workers' start-up is printed beside it).
Also how busy the machine's cores were meanwhile, and how much of that was ours: other
work on the machine (other test suites, PostgreSQL itself) takes cores the second process
would need. Last line: ratio=<acknowledgements/s with 2 / with 1> (goal >= 1.7 on 2 cores).
Usage: python bench/scaleout.py --database-url postgresql+psycopg://… [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fixtures, scale  # noqa: E402
from bench.common import (  # noqa: E402
    CpuMeter,
    _Connection,
    free_port,
    in_parallel,
    liaison_env,
    scratch_database,
    start_liaison,
    stop,
)

CONNECTIONS = 8
THREADS = 8  # per server process (--threads)


def seed(url: str, folder: Path) -> dict:
    from engine.config import Settings
    from engine.core import Core
    from engine.services import admin, tasks
    provider = scale.seed(url, folder)
    core = Core(Settings(instance_path=folder, database_url=url, secret_key="bench-secret-key"))
    core.run(admin.create_user, "bench", "bench-password", "agent")
    token = core.run(admin.create_token, "bench")
    ticket = core.run(tasks.create_ticket, "scale-out")
    core.close()
    return {"provider": provider, "token": token, "ticket_id": ticket["id"]}


def acknowledgements(port: int, provider: dict, ids: list[int]) -> float:
    return scale.concurrent(port, provider, ids, CONNECTIONS)


def new_assignments(port: int, world: dict, count: int) -> float:
    body_of = {i: json.dumps({"title": f"scale-out {i}", "description": "x",
                              "group": "Bench Group"}).encode() for i in range(count)}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {world['token']}"}
    path = f"/api/v1/tickets/{world['ticket_id']}/tasks"

    def work(_number, share):
        conn = _Connection("127.0.0.1", port, timeout=60)
        for i in share:
            conn.request("POST", path, body_of[i], headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 201:
                raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        conn.close()
    return count / in_parallel(work, list(range(count)), CONNECTIONS)


def undelivered(url: str) -> int:
    from sqlalchemy import func, select

    from engine.adapters import orm
    from engine.adapters.db import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        left = conn.scalar(select(func.count()).select_from(orm.OutboxItem)
                           .where(orm.OutboxItem.status == "pending"))
    engine.dispose()
    return left


def wait_delivered(url: str, deadline: float = 600) -> None:
    ends = time.monotonic() + deadline
    while undelivered(url):
        if time.monotonic() > ends:
            raise SystemExit("the workers did not drain the outbox in time")
        time.sleep(0.2)


def delivery_window(url: str, since: datetime) -> tuple[int, float, float]:
    """(deliveries recorded since `since`, seconds from `since` to the first, seconds from the
    first to the last), from the exchanges' `updated_at` the workers stamped."""
    from sqlalchemy import func, select

    from engine.adapters import orm
    from engine.adapters.db import make_engine
    table = orm.Exchange
    engine = make_engine(url)
    with engine.connect() as conn:
        count, first, last = conn.execute(
            select(func.count(), func.min(table.updated_at), func.max(table.updated_at))
            .where(table.status == "delivered", table.updated_at >= since)).one()
    engine.dispose()
    first, last = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (first, last))
    return count, (first - since).total_seconds(), (last - first).total_seconds()


def measure(url: str, folder: Path, world: dict, processes: int, ack_ids: list[int],
            events: int) -> dict:
    port = free_port()
    env = liaison_env(url, folder, port, LIAISON_THREADS=str(THREADS))
    server = start_liaison(["serve", "--workers", str(processes), "--port", str(port)], env,
                           wait_port=port, log=folder / f"serve-{processes}.log")
    workers = []
    try:
        acknowledgements(port, world["provider"], ack_ids[:CONNECTIONS * 5])  # warm every process
        with CpuMeter([server.pid], url) as ack_cpu:
            acks = acknowledgements(port, world["provider"], ack_ids[CONNECTIONS * 5:])
        with CpuMeter([server.pid], url) as event_cpu:
            accepted = new_assignments(port, world, events)
        stop(server)
        # the outbox now holds the events' deliveries: the workers share it (leases taken
        # with SKIP LOCKED) and drain it with nothing else running. Deliveries/s run from the
        # first delivery to the last (each exchange's stamp): a worker process starting
        # (imports, its Core: ≈ 0.7 s) is not delivery throughput, nor this loop's polling.
        started = datetime.now(UTC)
        workers = [start_liaison(["worker"], env, log=folder / f"worker-{processes}.log")
                   for _ in range(processes)]
        with CpuMeter([w.pid for w in workers], url) as drain_cpu:
            wait_delivered(url)
        count, startup, drain = delivery_window(url, started)
        if count < events:  # one delivery per event (and the seed's own, in the first round)
            raise SystemExit(f"{count} deliveries recorded, {events} expected")
        delivered = (count - 1) / drain
    finally:
        for process in (server, *workers):
            stop(process)
    return {"acks": acks, "accepted": accepted, "delivered": delivered, "startup": startup,
            "ack_cpu": ack_cpu,
            "event_cpu": event_cpu, "drain_cpu": drain_cpu}


def report(results: dict, args) -> None:
    one, two = results[1], results[2]
    print(f"database: postgresql  acknowledgements per setting: {args.acks}  "
          f"events: {args.events}  client connections: {CONNECTIONS}  "
          f"threads per server process: {THREADS}")
    for n, r in results.items():
        print(f"{n} server process(es): {r['acks']:6.0f} acks/s, {r['accepted']:6.0f} events/s; "
              f"{n} worker(s): {r['delivered']:6.0f} deliveries/s "
              f"(first after {r['startup']:.2f} s of start-up)")
        for label, cpu in (("acks", r["ack_cpu"]), ("events", r["event_cpu"]),
                           ("deliveries", r["drain_cpu"])):
            print(f"    cores busy during {label}: {cpu.machine:.2f} of {cpu.cores}: liaison "
                  f"{cpu.ours - cpu.client:.2f}, load generator {cpu.client:.2f}, PostgreSQL "
                  f"{cpu.database:.2f}, other work on the machine {cpu.others:.2f}")
    print(f"2/1: acknowledgements {two['acks'] / one['acks']:.2f}, events "
          f"{two['accepted'] / one['accepted']:.2f}, deliveries "
          f"{two['delivered'] / one['delivered']:.2f} (goal >= 1.7)")
    print(f"ratio={two['acks'] / one['acks']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="request threads per server process (LIAISON_THREADS)")
    args = parser.parse_args()
    globals()["THREADS"] = args.threads
    if not args.database_url.startswith("postgresql"):
        parser.error("scale-out needs PostgreSQL (--database-url postgresql+psycopg://...)")
    args.acks, args.events = (2_000, 1_000) if args.quick else (10_000, 4_000)
    results = {}
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        world = seed(url, Path(folder))
        ids = fixtures.load(url, waiting=2 * (args.acks + CONNECTIONS * 5))
        for processes in (1, 2):
            batch, ids = ids[:args.acks + CONNECTIONS * 5], ids[args.acks + CONNECTIONS * 5:]
            results[processes] = measure(url, Path(folder), world, processes, batch, args.events)
    report(results, args)


if __name__ == "__main__":
    main()
