"""Where the time of a hot path goes: milliseconds per call in each stage, measured in process
(no HTTP) by timing the functions each stage is made of. A diagnosis for bench/RESULTS.md,
not a benchmark with a ratio.

events: create a task for an integrated group (as bench/events.py).
soap:   a WS-Security (digest) acknowledgement through the SOAP endpoint, as bench/soap.py
        sends it, minus HTTP (the endpoint's WSGI callable is called directly).
Usage: python bench/stages.py [--database-url URL] [-n N]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ack_envelope, scratch_database  # noqa: E402

TOTALS: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # wall, this thread's CPU


@contextmanager
def timed(owner, name: str, label: str):
    """Adds the time spent in owner.name to TOTALS[label] while the block runs."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            TOTALS[label][0] += time.perf_counter() - started
            TOTALS[label][1] += time.thread_time() - cpu

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def stage_hooks():
    from engine.adapters.bpmn import ProcessRuntime
    from engine.adapters.repositories import Repository
    from engine.services import operators
    from engine.unit_of_work import UnitOfWork
    from webservice import endpoint, guard
    from webservice.auth import Caller, ProviderAuthenticator
    hooks = [
        (Repository, "ticket_and_group", "read: ticket and group (+provider, bindings)"),
        (Repository, "task_row_for_update", "read: task (+group, provider, bindings, request id)"),
        (Repository, "instances_waiting_for", "read: waiting instances"),
        (Repository, "exchange_result_by_key", "read: request id"),
        (Repository, "insert_task_row", "write: task"), (Repository, "insert_nonce", "write: nonce"),
        (Repository, "insert_exchange", "write: exchange"),
        (Repository, "insert_outbox", "write: outbox row"),
        (Repository, "insert_instance", "write: instance"),
        (Repository, "update_instance", "write: instance update"),
        (UnitOfWork, "commit", "commit (the task's UPDATE + COMMIT)"),
        (ProcessRuntime, "start", "BPMN: start (incl. its operators' writes)"),
        (ProcessRuntime, "deliver_message", "BPMN: restore, message, run, store"),
        (operators, "render_request", "render the provider request"),
        (guard, "read_envelope", "SOAP: guard (read, parse, check)"),
        (endpoint, "read_username_token", "SOAP: read the UsernameToken"),
        (ProviderAuthenticator, "authenticate", "SOAP: password check (cached login)"),
        (Caller, "run_event", "SOAP: the use case, run and committed"),
        (endpoint.WorkflowEndpoint, "_spyne", "SOAP: spyne (parse, validate, call, reply)"),
    ]
    return hooks


def run_with_hooks(work, n: int) -> dict[str, tuple[float, float]]:
    from contextlib import ExitStack
    TOTALS.clear()
    with ExitStack() as stack:
        for owner, name, label in stage_hooks():
            stack.enter_context(timed(owner, name, label))
        started, cpu = time.perf_counter(), time.thread_time()
        for i in range(n):
            work(i)
        TOTALS["= total per call"] = [time.perf_counter() - started, time.thread_time() - cpu]
    return {label: (wall * 1000 / n, cpu * 1000 / n) for label, (wall, cpu) in TOTALS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()
    from app import create_app
    from bench import events
    from engine.services import tasks
    from webservice.faults import SoapVersion  # noqa: F401 - spyne imports settle first

    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        core, ticket_id = events.make_core(url, Path(folder))
        from engine.services import admin
        provider = core.run(admin.regenerate_provider_password, "P")
        endpoint = create_app(core=core).extensions["liaison.soap"]

        def new_task(i):
            return core.run(tasks.create_task, ticket_id, f"task {i}", "x", group="G")["id"]

        for i in range(50):
            new_task(i)
        event_stages = run_with_hooks(new_task, args.n)
        waiting = [new_task(i) for i in range(args.n + 50)]

        def acknowledge(i):
            body = ack_envelope(provider["username"], provider["password"], waiting[i], f"R{i}",
                                f"q{i}")
            environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/x", "CONTENT_LENGTH": str(len(body)),
                       "CONTENT_TYPE": "text/xml; charset=utf-8", "wsgi.input": io.BytesIO(body),
                       "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "x", "SERVER_PORT": "80",
                       "wsgi.url_scheme": "http"}
            status = []
            b"".join(endpoint(environ, lambda s, h, e=None: status.append(s)))
            assert status[0].startswith("200"), status

        for i in range(50):
            acknowledge(i)
        waiting = waiting[50:]
        soap_stages = run_with_hooks(acknowledge, args.n)
        core.close()
    print(f"database: {url.split(':')[0].split('+')[0]}  calls: {args.n}  (ms per call, wall "
          "and this thread's CPU; a stage's time includes the stages it calls)")
    for title, stages in (("new assignment (create_task)", event_stages),
                          ("SOAP acknowledgement (endpoint, no HTTP)", soap_stages)):
        print(f"{title:48s}   wall     cpu")
        for label, (wall, cpu) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
            print(f"  {label:46s} {wall:7.3f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
