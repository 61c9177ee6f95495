"""Scale of data: acknowledgement latency with 1,000 and with 1,000,000 stored tasks, and the
server's memory after many acknowledgements.

The server is `liaison serve` (one process, waitress); one provider connection sends SOAP
acknowledgements (PasswordDigest, fresh nonce each) to tasks waiting for them, one after
another, and the p99 of their latencies is taken with 1,000 stored tasks, then again after
the fixture loader (bench/fixtures.py: COPY / executemany) has filled the database to
1,000,000 tasks, each with its exchange and process instance. Then `--acks` more
acknowledgements from 4 connections at once, and the server's resident memory before and
after them.

Last line: ratio=<p99 at 1M / p99 at 1k> (goal <= 1.5); RSS goal <= 200 MB after 100,000.
Usage: python bench/scale.py [--quick] [--database-url URL] [--tasks N] [--acks N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fixtures  # noqa: E402
from bench.common import (  # noqa: E402
    SoapSender,
    backend,
    bench_core,
    free_port,
    in_parallel,
    liaison_env,
    rss_mb,
    scratch_database,
    start_liaison,
    stop,
)

SAMPLES = 500
WARM = 50


def seed(url: str, folder: Path) -> dict:
    """A provider, its integrated group (bundled processes) and one task waiting for its
    acknowledgement (the loader's template); returns the provider's credentials."""
    from engine.config import Settings
    from engine.services import admin, tasks

    core = bench_core(Settings(instance_path=folder, database_url=url,
                               secret_key="bench-secret-key"))
    provider = core.run(admin.create_provider, "Bench Carrier", "email", email="noc@bench.example")
    core.run(admin.create_group, "Bench Group", integrated=True, provider="Bench Carrier")
    ticket = core.run(tasks.create_ticket, "bench")
    core.run(tasks.create_task, ticket["id"], "template", "", group="Bench Group")
    core.close()
    return provider


def p99(durations: list[float]) -> float:
    return statistics.quantiles(durations, n=100, method="inclusive")[98]


def sequential(sender: SoapSender, ids: list[int]) -> list[float]:
    return [sender.acknowledge(task_id) for task_id in ids]


def concurrent(port: int, provider: dict, ids: list[int], connections: int = 4) -> float:
    """Acknowledges `ids` from several connections at once; returns acknowledgements/s."""
    def send(_number, share) -> None:
        sender = SoapSender(port, provider["username"], provider["password"])
        try:
            sequential(sender, share)
        finally:
            sender.close()
    return len(ids) / in_parallel(send, ids, connections)


def fill(url: str, total: int, waiting: int = 0) -> list[int]:
    have = fixtures.count_tasks(url)
    started = time.perf_counter()
    ids = fixtures.load(url, tasks=max(0, total - have - waiting), waiting=waiting)
    print(f"  loaded to {max(total, have + waiting):,} tasks in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return ids


def run(args, folder: Path) -> None:
    with scratch_database(args.database_url, folder) as url:
        provider = seed(url, folder)
        first = fill(url, 1_000, waiting=WARM + SAMPLES)
        port = free_port()
        server = start_liaison(["serve", "--port", str(port)], liaison_env(url, folder, port),
                               wait_port=port, log=folder / "server.log")
        try:
            sender = SoapSender(port, provider["username"], provider["password"])
            sequential(sender, first[:WARM])
            small = p99(sequential(sender, first[WARM:]))
            later = fill(url, args.tasks, waiting=WARM + SAMPLES + args.acks)
            sequential(sender, later[:WARM])  # first touch of the grown tables
            large = p99(sequential(sender, later[WARM:WARM + SAMPLES]))
            sender.close()
            before = rss_mb(server.pid)
            rate = concurrent(port, provider, later[WARM + SAMPLES:])
            after = rss_mb(server.pid)
        finally:
            stop(server)
    print(f"database: {backend(url)}  stored tasks: 1,000 then {args.tasks:,}")
    print(f"p99 acknowledgement: {small * 1000:6.1f} ms with 1,000 tasks, {large * 1000:6.1f} ms "
          f"with {args.tasks:,} (goal: ratio <= 1.5)")
    print(f"server RSS: {before:.0f} MB before, {after:.0f} MB after {args.acks:,} more "
          f"acknowledgements ({rate:.0f}/s from 4 connections) (goal <= 200 MB after 100,000)")
    print(f"ratio={large / small:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100,000 stored tasks and 10,000 acknowledgements for memory")
    parser.add_argument("--database-url")
    parser.add_argument("--tasks", type=int, help="stored tasks of the large case (1,000,000)")
    parser.add_argument("--acks", type=int, help="acknowledgements for the memory reading "
                                                 "(100,000)")
    args = parser.parse_args()
    args.tasks = args.tasks or (100_000 if args.quick else 1_000_000)
    args.acks = args.acks if args.acks is not None else (10_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory() as folder:
        run(args, Path(folder))


if __name__ == "__main__":
    main()
