"""Submit Requests delivered per second through the outbox to the simulated ConnectWise, against
raw `requests` posting the same ticket bodies to the same simulator in the same run.

ours: tasks of a ConnectWise provider's group are created first (not timed); then the worker
      delivers their outbox rows: lease (commit), look up the connection (sealed key opened),
      POST /service/tickets on the provider's pooled session, record the outcome and apply
      the ticket id as the task's reference (Acknowledgement/In + the waiting BPMN instance
      completes), commit. One worker, sequential, like the raw client.
raw:  one requests.Session posting the same bodies with the same headers, sequentially.
The simulator runs as its own process (`liaison simulate-psa`); `--latency S` adds S seconds
to every answer, as a remote ConnectWise would. Rounds interleave so noise hits both alike.
Last line: ratio=<ours/raw>.  Usage: python bench/connectwise.py [--quick] [--latency S]
[--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEMBER = {"company_id": "bench", "public_key": "bench-public", "private_key": "bench-private",
          "client_id": "bench-client"}


def start_simulator(port: int, latency: float) -> subprocess.Popen:
    import requests
    env = {**os.environ, "LIAISON_PSA_SIM_PRIVATE_KEY": MEMBER["private_key"]}
    process = subprocess.Popen(
        [sys.executable, "-m", "liaison_cli", "simulate-psa", "--port", str(port),
         "--company-id", MEMBER["company_id"], "--public-key", MEMBER["public_key"],
         "--client-id", MEMBER["client_id"], "--latency", str(latency)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v4_6_release/apis/3.0/_sim/state"
    for _ in range(300):
        try:
            if requests.get(url, timeout=2).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the simulator did not start")


def make_core(url: str, folder: Path, api: str):
    from bench.common import bench_core
    from engine.config import Settings
    from engine.services import admin, psa_lookups, psa_settings

    core = bench_core(Settings(instance_path=folder, database_url=url, secret_key="bench-secret",
                               workers_inline=False))
    provider = core.run(admin.create_provider, "Bench NOC", "connectwise",
                        connection={"url": api, **MEMBER})
    psa_lookups.refresh(core, provider["id"])
    core.run(psa_settings.put_settings, provider["id"], {
        "board": "Managed NOC", "service_type": "Incident", "company": "ACMERetail",
        "priority": "Priority 3 - Normal Response", "auto_close": True})
    core.run(admin.create_group, "Bench NOC", integrated=True, provider="Bench NOC")
    return core


def queue_tasks(core, count: int) -> list[dict]:
    """Creates `count` tasks (their Submit Requests wait in the outbox); returns the bodies."""
    from engine.services import tasks
    ticket = core.run(tasks.create_ticket, "bench")
    ids = [core.run(tasks.create_task, ticket["id"], f"Bench task {i}", "Serial 4711",
                    group="Bench NOC")["id"] for i in range(count)]
    return core.run(lambda uow: [uow.repo.exchanges(task_id=i)[0].payload for i in ids])


class Cpu:
    """CPU seconds used by this process (all its threads) and the simulator's, during a
    stretch: far less disturbed by other processes' load than the wall clock."""

    def __init__(self, simulator_pid: int) -> None:
        self.pid, self.total = simulator_pid, 0.0

    def now(self) -> float:
        from bench.common import _process_jiffies
        own = os.times()
        return own.user + own.system + _process_jiffies(self.pid) / os.sysconf("SC_CLK_TCK")

    def measure(self, run, *args):
        started = self.now()
        try:
            return run(*args)
        finally:
            self.total += self.now() - started


def deliver_all(core, count: int) -> float:
    from engine.worker import Worker
    worker = Worker(core, name="bench", batch=50)
    started = time.perf_counter()
    delivered = 0
    while delivered < count:
        done = worker.deliver_due()
        if not done:
            raise SystemExit("nothing left to deliver: some deliveries failed")
        delivered += done
    return time.perf_counter() - started


def channel_only(core, messages: list[dict]) -> float:
    """The connectwise channel's deliver() alone (no outbox, no acknowledgement)."""
    from engine.adapters.providers import Delivery
    channel = core.channels.get("connectwise")
    started = time.perf_counter()
    for number, message in enumerate(messages, start=1):
        channel.deliver(message, Delivery(outbox_id=number))
    return time.perf_counter() - started


def post_raw(api: str, bodies: list[dict]) -> float:
    import requests

    from engine.adapters.connectwise_client import Connection
    headers = Connection(api, **MEMBER).headers()
    session = requests.Session()
    started = time.perf_counter()
    for body in bodies:
        response = session.post(api + "/service/tickets", json=body, headers=headers,
                                timeout=(5, 30))
        response.raise_for_status()
        response.json()
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


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

    per_round, rounds = (40, 2) if args.quick else (150, 3)
    port = free_port()
    simulator = start_simulator(port, args.latency)
    api = f"http://127.0.0.1:{port}/v4_6_release/apis/3.0"
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        core = make_core(url, Path(folder), api)
        ours, raw, channel = [], [], []
        ours_cpu, raw_cpu = Cpu(simulator.pid), Cpu(simulator.pid)
        try:
            for _ in range(rounds):
                messages = queue_tasks(core, per_round)
                ours.append(per_round / ours_cpu.measure(deliver_all, core, per_round))
                raw.append(per_round / raw_cpu.measure(post_raw, api,
                                                       [m["ticket"] for m in messages]))
                channel.append(per_round / channel_only(core, messages))
        finally:
            core.close()
            simulator.terminate()
            simulator.wait(10)
    ours_rate, raw_rate = statistics.median(ours), statistics.median(raw)
    print(f"simulator latency {args.latency * 1000:.0f} ms, {rounds} rounds of {per_round}, "
          f"database {url.split(':')[0]}")
    print(f"raw requests      {raw_rate:8.1f} tickets/s  (rounds: "
          f"{', '.join(f'{r:.1f}' for r in raw)})")
    channel_rate = statistics.median(channel)
    print(f"channel alone     {channel_rate:8.1f} tickets/s  -> channel_ratio="
          f"{channel_rate / raw_rate:.2f} (deliver() without outbox and acknowledgement)")
    print(f"liaison outbox    {ours_rate:8.1f} tickets/s  (rounds: "
          f"{', '.join(f'{r:.1f}' for r in ours)})")
    items = per_round * rounds
    print(f"CPU per ticket (this process + simulator): raw {raw_cpu.total / items * 1000:.2f} "
          f"ms, liaison {ours_cpu.total / items * 1000:.2f} ms -> cpu_ratio="
          f"{raw_cpu.total / ours_cpu.total:.2f}")
    print(f"ratio={ours_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
