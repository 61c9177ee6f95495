"""SOAP acknowledgements per second end to end, against a raw spyne no-op in the same run.

ours: zeep (WS-Security PasswordDigest) -> waitress -> liaison's app: guard, UsernameToken
      check with its nonce stored, spyne -> acknowledge_external: the reference persisted,
      the Acknowledgement/In exchange recorded, ExternalAcknowledgement delivered to the task's
      waiting BPMN instance, committed -> response. One call per task.
raw:  zeep -> waitress -> a spyne service with the same operation and protocol (lxml schema
      validation) that returns at once: no auth, no database.
Both servers run as subprocesses on the same stack (waitress, 8 threads); one client process
calls sequentially, interleaved rounds so machine noise hits both alike.

Also the p99 latency of acknowledgements with 1,000 and with 100,000 stored tasks (filler
tasks, each with an exchange and a completed instance, bulk-inserted with SQL).
Last line: ratio=<ours/raw>.  Usage: python bench/soap.py [--quick] [--database-url URL]
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

PATH = "/Workflow/WebService/WorkflowService.asmx"
SECRET = "bench-secret-key"


def settings_for(url: str, folder: Path, port: int = 0):
    from engine.config import Settings
    return Settings(instance_path=folder, database_url=url, secret_key=SECRET,
                    public_url=f"http://127.0.0.1:{port}", workers_inline=False)


def serve(kind: str, port: int, url: str, folder: Path) -> None:
    """The server subprocess: liaison's app, or the raw spyne no-op."""
    import logging

    from waitress import serve as waitress_serve
    logging.disable(logging.WARNING)
    if kind == "app":
        from app import create_app
        from engine.core import Core
        app = create_app(core=Core(settings_for(url, folder, port)))
    else:
        app = noop_application()
    waitress_serve(app, host="127.0.0.1", port=port, threads=8, _quiet=True)


def noop_application():
    from spyne import Application, ServiceBase, rpc
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

    from webservice.service import ExternalEventResult, OptionalText, RequiredInt, RequiredText

    class NoOp(ServiceBase):
        @rpc(RequiredInt, RequiredText, OptionalText, _returns=ExternalEventResult,
             _args=("taskId", "externalReference", "requestId"),
             _operation_name="ProcessInstanceTaskExternalAcknowledgement")
        def acknowledge(ctx, task_id, reference, request_id):  # noqa: N805 - spyne's ctx
            return ExternalEventResult(taskId=task_id, externalReference=reference,
                                       requestType="Acknowledgement", status="accepted")

    return WsgiApplication(Application([NoOp], tns="urn:liaison:workflow", name="WorkflowService",
                                       in_protocol=Soap11(validator="lxml"),
                                       out_protocol=Soap11()))


def seed(url: str, folder: Path, waiting: int) -> tuple[dict, list[int]]:
    """A provider and its integrated group, and `waiting` tasks waiting for acknowledgement."""
    from bench.common import bench_core
    from engine.services import admin, tasks

    core = bench_core(settings_for(url, folder))
    provider = core.run(admin.create_provider, "Bench Carrier", "email", email="noc@bench.example")
    core.run(admin.create_group, "Bench Group", integrated=True, provider="Bench Carrier")
    ticket = core.run(tasks.create_ticket, "bench")
    ids = [core.run(tasks.create_task, ticket["id"], f"task {i}", "", group="Bench Group")["id"]
           for i in range(waiting)]
    core.close()
    return provider, ids


def fill_to(url: str, total: int) -> None:
    """Bulk-inserts filler tasks (with an exchange and a completed instance each) up to `total`."""
    from sqlalchemy import func, insert, select

    from engine.adapters import orm
    from engine.adapters.db import make_engine
    engine = make_engine(url)
    with engine.begin() as conn:
        have = conn.scalar(select(func.count()).select_from(orm.Task))
        group_id = conn.scalar(select(orm.Group.id).where(orm.Group.name == "Bench Group"))
        provider_id = conn.scalar(select(orm.Provider.id))
        model_id = conn.scalar(select(orm.ProcessModel.id))
        ticket_id = conn.scalar(select(orm.Ticket.id))
        first = conn.scalar(select(func.max(orm.Task.id))) + 1
        for start in range(first, first + max(0, total - have), 20_000):
            ids = range(start, min(start + 20_000, first + total - have))
            conn.execute(insert(orm.Task), [
                {"id": i, "ticket_id": ticket_id, "title": f"filler {i}", "description": "",
                 "group_id": group_id, "status": "open", "external_reference": f"F-{i}",
                 "priority": "normal", "version": 1, "solution_pending": False} for i in ids])
            conn.execute(insert(orm.Exchange), [
                {"task_id": i, "provider_id": provider_id, "request_type": "Acknowledgement",
                 "direction": "In", "channel": "soap", "status": "delivered", "attempts": 1,
                 "payload": {}, "result": {}, "idempotency_key": f"filler-{i}"} for i in ids])
            conn.execute(insert(orm.ProcessInstance), [
                {"task_id": i, "model_id": model_id, "process_id": "liaison_new_assignment",
                 "event": "new_assignment", "status": "completed", "state": "{}",
                 "waiting_messages": "", "current_steps": [], "version": 1} for i in ids])
    # A database in steady state, not one that just took 300,000 rows: fold the WAL back in
    # (SQLite), or vacuum and refresh the planner's statistics (PostgreSQL).
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            raw.driver_connection.autocommit = True
            raw.cursor().execute("VACUUM ANALYZE")
    finally:
        raw.close()
    engine.dispose()


def start_server(kind: str, port: int, url: str, folder: Path) -> subprocess.Popen:
    import requests
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port),
                                "--database-url", url, "--folder", str(folder)], cwd=ROOT)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}{PATH}?wsdl", timeout=2).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def client_for(port: int, provider: dict | None):
    import zeep
    from zeep.wsse.username import UsernameToken
    wsse = UsernameToken(provider["username"], provider["password"], use_digest=True) \
        if provider else None
    client = zeep.Client(f"http://127.0.0.1:{port}{PATH}?wsdl", wsse=wsse,
                         transport=zeep.Transport(operation_timeout=30))
    return client.create_service("{urn:liaison:workflow}WorkflowService" if not provider
                                 else "{urn:liaison:workflow}WorkflowServiceSoap",
                                 f"http://127.0.0.1:{port}{PATH}")


def timed_calls(service, task_ids: list[int], expect: str) -> list[float]:
    durations = []
    for task_id in task_ids:
        started = time.perf_counter()
        answer = service.ProcessInstanceTaskExternalAcknowledgement(
            taskId=task_id, externalReference=f"REF-{task_id}", requestId=f"bench-{task_id}")
        durations.append(time.perf_counter() - started)
        assert answer.status == expect, answer
    return durations


def engine_only(url: str, folder: Path, task_ids: list[int]) -> float:
    """Seconds per acknowledgement of the engine's use case alone (no HTTP, SOAP or auth)."""
    from engine.core import Core
    from engine.services.inbound import Inbound, acknowledge_external
    core = Core(settings_for(url, folder))
    started = time.perf_counter()
    for task_id in task_ids:
        core.run(acknowledge_external, task_id, f"REF-{task_id}",
                 Inbound(provider="Bench Carrier", request_id=f"engine-{task_id}"))
    elapsed = time.perf_counter() - started
    core.close()
    return elapsed / len(task_ids)


def server_cpu(process) -> float:
    """CPU seconds the server process has used so far (from /proc; clock ticks)."""
    from bench.common import _process_jiffies
    return _process_jiffies(process.pid) / os.sysconf("SC_CLK_TCK")


def p99(durations: list[float]) -> float:
    return statistics.quantiles(durations, n=100, method="inclusive")[98]


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, folder: Path) -> None:
    n, rounds, samples = (150, 2, 200) if args.quick else (500, 3, 1000)
    url = args.database_url or f"sqlite:///{folder}/bench.db"
    warm = 20
    provider, ids = seed(url, folder, warm + n * rounds + 2 * samples + n)
    fill_to(url, 1_000)
    app_port, noop_port = free_port(), free_port()
    servers = [start_server("app", app_port, url, folder),
               start_server("noop", noop_port, url, folder)]
    try:
        ours, raw = client_for(app_port, provider), client_for(noop_port, None)
        timed_calls(ours, ids[:warm], "accepted")
        timed_calls(raw, ids[:warm] * 5, "accepted")
        engine_ids, queue, our_rates, raw_rates = ids[warm:warm + n], ids[warm + n:], [], []
        our_cpu, raw_cpu = [], []
        for _ in range(rounds):
            batch, queue = queue[:n], queue[n:]
            before = server_cpu(servers[0])
            our_rates.append(n / sum(timed_calls(ours, batch, "accepted")))
            our_cpu.append((server_cpu(servers[0]) - before) / n)
            before = server_cpu(servers[1])
            raw_rates.append(n / sum(timed_calls(raw, batch * 2, "accepted")) * 2)
            raw_cpu.append((server_cpu(servers[1]) - before) / (2 * n))
        engine = engine_only(url, folder, engine_ids)
        small = p99(timed_calls(ours, queue[:samples], "accepted"))
        fill_to(url, 100_000)
        timed_calls(ours, queue[samples:samples + 5], "accepted")  # first touch of the new pages
        large = p99(timed_calls(ours, queue[samples + 5:2 * samples], "accepted"))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    mine, base = statistics.median(our_rates), statistics.median(raw_rates)
    our_ms, raw_ms = statistics.median(our_cpu) * 1000, statistics.median(raw_cpu) * 1000
    print(f"database: {url.split(':')[0].split('+')[0]}  acknowledgements per round: {n}  "
          f"rounds: {rounds}")
    print(f"raw spyne no-op (zeep -> waitress -> spyne):        {base:8.0f} calls/s")
    print(f"liaison acknowledgement (auth, persist, BPMN, reply): {mine:8.0f} acks/s")
    print(f"per acknowledgement: {1000 / mine:.1f} ms, of which the engine's use case alone "
          f"(persist + BPMN, no HTTP/SOAP/auth) {engine * 1000:.1f} ms and a raw spyne call "
          f"{1000 / base:.1f} ms")
    print(f"server CPU per call (robust on a busy machine): raw spyne {raw_ms:.2f} ms, liaison "
          f"{our_ms:.2f} ms (the client's own CPU, zeep, is the same for both)")
    print(f"p99 latency: {small * 1000:6.1f} ms with 1,000 tasks, {large * 1000:6.1f} ms with "
          f"100,000 tasks; ratio {large / small:.2f} (goal <= 1.5)")
    print(f"ratio={mine / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller rounds, under 2 minutes")
    parser.add_argument("--database-url")
    parser.add_argument("--serve", choices=["app", "noop"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.database_url, Path(args.folder))
        return
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    from bench.common import scratch_database
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        args.database_url = url
        run(args, Path(folder))


if __name__ == "__main__":
    main()
