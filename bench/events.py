"""Integrated-group events per second, against raw SpiffWorkflow measured in the same run.

ours: create a task for an integrated group = start liaison_new_assignment, run it to its
      wait, record the Submit Request exchange + outbox row, commit (SQLite file, WAL).
raw:  SpiffWorkflow alone: parse the same BPMN once, then per event instantiate, run to the
      wait (service task answered by a no-op), serialize to JSON. No database.

Also reports the bytes stored per completed instance. Last line: ratio=<ours/raw>.
Usage: python bench/events.py [--quick] [--database-url URL]  (PostgreSQL: a scratch schema)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BPMN = ROOT / "processes" / "liaison_new_assignment.bpmn"


def raw_spiff(n: int) -> float:
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
    from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

    class NoOpServices(PythonScriptEngine):
        def call_service(self, task, operation_name, operation_params, **kwargs):
            return json.dumps({"exchange_id": 1})

    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("liaison_new_assignment")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    engine = NoOpServices()
    started = time.perf_counter()
    for i in range(n):
        workflow = BpmnWorkflow(spec, script_engine=engine)
        workflow.get_tasks(state=16)[0].data.update(_variables(i))
        workflow.do_engine_steps()
        serializer.serialize_json(workflow)
    return n / (time.perf_counter() - started)


def _variables(i: int) -> dict:
    return {"event": {"type": "new_assignment", "request_type": "Submit Request",
                      "direction": "Out", "message": "", "channel": "web", "actor": "bench",
                      "at": "2026-01-01T00:00:00+00:00"},
            "task": {"id": i + 1, "ticket_id": 1, "title": f"task {i}", "description": "x",
                     "group": "G", "status": "open", "external_reference": None,
                     "solution": None, "priority": "normal", "customer": "ACME"},
            "ticket": {"id": 1, "title": "t", "customer": "ACME"},
            "provider": {"name": "P", "channel": "email"}}


def make_core(url: str, folder: Path):
    from bench.common import bench_core
    from engine.config import Settings
    from engine.services import admin, tasks

    core = bench_core(Settings(instance_path=folder, database_url=url, secret_key="bench"))
    core.run(admin.create_provider, "P", "email", email="p@example.org")
    core.run(admin.create_group, "G", integrated=True, provider="P")
    ticket = core.run(tasks.create_ticket, "bench")
    return core, ticket["id"]


def ours(core, ticket_id: int, n: int) -> float:
    from engine.services import tasks
    started = time.perf_counter()
    for i in range(n):
        core.run(tasks.create_task, ticket_id, f"task {i}", "x", group="G")
    return n / (time.perf_counter() - started)


def cpu_ms(run, n: int) -> float:
    """This process's CPU per item while `run(n)` runs: unlike the wall clock, it does not
    count waiting for a core other processes hold (the machine is shared) or for the disk."""
    started = time.process_time()
    run(n)
    return (time.process_time() - started) * 1000 / n


def stored_bytes(core, ticket_id: int) -> tuple[int, int]:
    """Bytes of serialized state of one waiting and one completed new-assignment instance."""
    from engine.services import tasks
    from engine.services.inbound import acknowledge_external
    task = core.run(tasks.create_task, ticket_id, "size probe", "x", group="G")
    with core.uow() as uow:
        waiting = len(uow.repo.instances_of_task(task["id"])[0].state.encode())
    core.run(acknowledge_external, task["id"], "REF-SIZE")
    with core.uow() as uow:
        instance = uow.repo.instances_of_task(task["id"])[0]
        assert instance.status == "completed", instance.status
        completed = len(instance.state.encode())
    return waiting, completed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    n, rounds = (200, 3) if args.quick else (1000, 5)
    from bench.common import scratch_database
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        core, ticket_id = make_core(url, Path(folder))
        ours(core, ticket_id, 20)  # warm caches
        raw_spiff(20)
        raw_rates, our_rates, raw_cpu, our_cpu = [], [], [], []
        for _ in range(rounds):  # interleaved, so machine noise hits both alike
            raw_rates.append(raw_spiff(n))
            our_rates.append(ours(core, ticket_id, n))
            raw_cpu.append(cpu_ms(raw_spiff, n // 2))
            our_cpu.append(cpu_ms(lambda k: ours(core, ticket_id, k), n // 2))
        waiting, completed = stored_bytes(core, ticket_id)
        core.close()
    raw, mine = statistics.median(raw_rates), statistics.median(our_rates)
    print(f"database: {url.split(':')[0].split('+')[0]}  events per round: {n}  rounds: {rounds}")
    print(f"raw SpiffWorkflow (parse once, run, serialize): {raw:8.0f} instances/s")
    print(f"liaison (assignment -> process -> outbox, committed): {mine:8.0f} events/s")
    raw_ms, our_ms = statistics.median(raw_cpu), statistics.median(our_cpu)
    print(f"CPU per item (this process; robust on a busy machine): raw {raw_ms:.2f} ms, "
          f"liaison {our_ms:.2f} ms -> cpu ratio {raw_ms / our_ms:.2f}")
    print(f"state bytes per instance: waiting {waiting}, completed {completed} (goal <= 8192)")
    print(f"ratio={mine / raw:.2f}")


if __name__ == "__main__":
    main()
