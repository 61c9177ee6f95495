"""Provider-opened tickets applied per second from a seeded simulated ConnectWise, against raw
`requests` fetching the same tickets from the same simulator in the same run.

Each round the provider's people open N tickets on the simulator (not timed). Then:
ours: one poll of the `psa-poll` job and the inbound queue it fills: the changed tickets
      (paged, `lastUpdated > [last seen]`), each new ticket's notes and configurations, the
      queue items stored, then each applied in its own transaction — a local ticket, a task in
      the inbound group, the customer by site, a New Ticket/In exchange, a history note —
      committed. Sequential, one worker.
raw:  one requests.Session making the same reads (the list, each ticket's notes and
      configurations) and parsing the JSON, nothing stored.
The simulator runs as its own process (`liaison simulate-psa`). Rounds interleave.
`--latency S` adds S seconds to every simulator answer, as a remote ConnectWise would.
Last line: ratio=<ours/raw>.  Usage: python bench/inbound.py [--quick] [--latency S]
[--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.connectwise import MEMBER, Cpu, start_simulator  # noqa: E402


def make_core(url: str, folder: Path, api: str):
    from bench.common import bench_core
    from engine.config import Settings
    from engine.services import admin, inbound_settings

    core = bench_core(Settings(instance_path=folder, database_url=url, secret_key="bench-secret",
                               workers_inline=False))
    provider = core.run(admin.create_provider, "Bench NOC", "connectwise",
                        connection={"url": api, **MEMBER})
    core.run(admin.create_group, "Service Desk", integrated=False)
    core.run(inbound_settings.set_inbound, provider["id"],
             {"inbound_group": "Service Desk", "inbound_enabled": True})
    return core, provider["id"]


def seed(api: str, count: int, round_number: int) -> None:
    import requests
    companies = ("ACMERetail", "NorthwindLtd")
    with requests.Session() as session:
        for number in range(count):
            response = session.post(f"{api}/_sim/provider/tickets", json={
                "summary": f"Alarm {round_number}-{number}", "company": companies[number % 2],
                "description": "Raised by monitoring", "configuration": 1 + number % 3},
                timeout=10)
            response.raise_for_status()


def ours(core, provider_id: int, count: int) -> float:
    from engine.services import inbound_queue, psa_inbound

    started = time.perf_counter()
    reader = psa_inbound.reader_for(core, provider_id)
    polled = psa_inbound.poll_provider(core, provider_id, reader)
    applied = inbound_queue.drain_job(core)
    elapsed = time.perf_counter() - started
    if polled["queued"] != count or applied.get("done") != count:
        raise SystemExit(f"expected {count} tickets, polled {polled}, applied {applied}")
    return elapsed


def raw(api: str, since: datetime) -> tuple[float, int]:
    import requests

    from engine.adapters.connectwise_client import Connection
    headers = Connection(api, **MEMBER).headers()
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.perf_counter()
    with requests.Session() as session:
        tickets, page = [], 1
        while True:
            batch = session.get(f"{api}/service/tickets", headers=headers, timeout=(5, 30),
                                params={"conditions": f"lastUpdated > [{stamp}]",
                                        "orderBy": "lastUpdated asc", "page": page,
                                        "pageSize": 250}).json()
            tickets += batch
            if len(batch) < 250:
                break
            page += 1
        for ticket in tickets:
            for tail in ("notes", "configurations"):
                session.get(f"{api}/service/tickets/{ticket['id']}/{tail}", headers=headers,
                            params={"page": 1, "pageSize": 250}, timeout=(5, 30)).json()
    return time.perf_counter() - started, len(tickets)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)
    from bench.common import scratch_database
    from tests.conftest import free_port

    per_round, rounds = (25, 2) if args.quick else (100, 3)
    port = free_port()
    simulator = start_simulator(port, args.latency)
    api = f"http://127.0.0.1:{port}/v4_6_release/apis/3.0"
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        core, provider_id = make_core(url, Path(folder), api)
        mine, theirs = [], []
        ours_cpu, raw_cpu = Cpu(simulator.pid), Cpu(simulator.pid)
        try:
            time.sleep(1.1)  # the provider's creation second is behind the first tickets
            for number in range(rounds):
                since = datetime.now(UTC) - timedelta(seconds=1)
                seed(api, per_round, number)
                raw_seconds, seen = raw_cpu.measure(raw, api, since)
                if seen != per_round:
                    raise SystemExit(f"raw fetched {seen} tickets, expected {per_round}")
                theirs.append(per_round / raw_seconds)
                mine.append(per_round / ours_cpu.measure(ours, core, provider_id, per_round))
                time.sleep(1.1)  # lastUpdated has whole seconds: the next round starts later
        finally:
            core.close()
            simulator.terminate()
            simulator.wait(10)
    ours_rate, raw_rate = statistics.median(mine), statistics.median(theirs)
    print(f"{rounds} rounds of {per_round} provider-opened tickets, simulator latency "
          f"{args.latency * 1000:.0f} ms, database {url.split(':')[0]}")
    print(f"raw requests     {raw_rate:8.1f} tickets/s fetched  (rounds: "
          f"{', '.join(f'{r:.1f}' for r in theirs)})")
    print(f"liaison inbound  {ours_rate:8.1f} tickets/s applied  (rounds: "
          f"{', '.join(f'{r:.1f}' for r in mine)})")
    items = per_round * rounds
    print(f"CPU per ticket (this process + simulator): raw {raw_cpu.total / items * 1000:.2f} "
          f"ms, liaison {ours_cpu.total / items * 1000:.2f} ms -> cpu_ratio="
          f"{raw_cpu.total / ours_cpu.total:.2f}")
    print(f"ratio={ours_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
