"""What the benchmarks share: a scratch database, servers as subprocesses, SOAP acknowledgements
as a provider sends them (raw HTTP, cheap for the load generator), CPU and memory readings."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOAP_PATH = "/Workflow/WebService/WorkflowService.asmx"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
          "#PasswordDigest")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def backend(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


@contextmanager
def scratch_database(url: str | None, folder: Path) -> Iterator[str]:
    """A database of the run's own: a SQLite file in `folder`, or on PostgreSQL a fresh schema
    of the database `url` names (dropped afterwards), so runs never meet each other's rows.
    Another URL (a SQLite file of the caller's choice) is used as it is."""
    if not url or not url.startswith("postgresql"):
        yield url or f"sqlite:///{folder}/bench.db"
        return
    from sqlalchemy import create_engine, text
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class NullMailer:
    """Outbound mail goes nowhere: the benchmarks measure the engine, not a disk."""

    def send(self, message) -> None:
        pass


def bench_core(settings):
    """A Core on `settings`' database, migrated, with the bundled processes deployed."""
    from engine.core import Core
    from engine.services.demo import deploy_bundled
    core = Core(settings, mailer=NullMailer())
    core.migrate()
    deploy_bundled(core)
    return core


def in_parallel(work, items: list, connections: int) -> float:
    """Runs work(connection_number, share) on `connections` threads; returns elapsed seconds.

    The connections draw their items from one queue (a closed-loop load generator): the
    kernel hashes each connection to one server process (SO_REUSEPORT), and 8 connections
    rarely split 4/4, so fixed shares per connection measured the busier process's queue
    (a 6/2 split gave 2/1 ≈ 1.3 whatever the servers could do). Drawing from one queue, a
    connection whose process answers sooner sends more, as real clients' load does."""
    errors: list[Exception] = []
    pending = iter(items)
    draw = threading.Lock()

    def share():
        while True:
            with draw:
                item = next(pending, None)
            if item is None:
                return
            yield item

    def run(number: int) -> None:
        try:
            work(number, share())
        except Exception as exc:  # reported after the threads finish
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def liaison_env(url: str, folder: Path, port: int, **extra: str) -> dict:
    env = {**os.environ, "LIAISON_DATABASE_URL": url, "LIAISON_INSTANCE_PATH": str(folder),
           "LIAISON_SECRET_KEY": "bench-secret-key", "LIAISON_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "LIAISON_WORKERS_INLINE": "0", "PYTHONWARNINGS": "ignore"}
    env.update(extra)
    return env


def start_liaison(args: list[str], env: dict, wait_port: int | None = None,
                  log: Path | None = None) -> subprocess.Popen:
    """`liaison ARGS` as a subprocess; with `wait_port`, returns once it answers HTTP there."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([sys.executable, "-m", "liaison_cli", *args], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    if wait_port is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"liaison {' '.join(args)} exited with {process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", wait_port, timeout=2)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    return process
            except OSError:
                time.sleep(0.2)
        stop(process)
        raise SystemExit(f"liaison {' '.join(args)} did not answer on port {wait_port}")
    return process


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def ack_envelope(username: str, password: str, task_id: int, reference: str,
                 request_id: str | None = None) -> bytes:
    """A SOAP 1.1 acknowledgement with a fresh WS-Security PasswordDigest, as zeep sends it."""
    nonce = os.urandom(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode())  # noqa: S324
                              .digest()).decode()
    request = f"<w:requestId>{request_id}</w:requestId>" if request_id else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope '
            f'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:w="urn:liaison:workflow">'
            f'<s:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{username}</wsse:Username>"
            f'<wsse:Password Type="{DIGEST}">{digest}</wsse:Password>'
            f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
            f"</s:Header><s:Body><w:ProcessInstanceTaskExternalAcknowledgement>"
            f"<w:taskId>{task_id}</w:taskId><w:externalReference>{reference}"
            f"</w:externalReference>{request}</w:ProcessInstanceTaskExternalAcknowledgement>"
            f"</s:Body></s:Envelope>").encode()


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        # a request goes out in one write, but without this Nagle holds back small writes
        # until the peer's delayed ACK: 40 ms stalls that are the client's, not the server's
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SoapSender:
    """One provider connection (HTTP keep-alive) sending acknowledgements one after another."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port, self.username, self.password = port, username, password
        self.conn = _Connection("127.0.0.1", port, timeout=60)

    def acknowledge(self, task_id: int) -> float:
        """Seconds the call took; raises unless the answer is `accepted`."""
        body = ack_envelope(self.username, self.password, task_id, f"REF-{task_id}",
                            f"bench-{task_id}")
        started = time.perf_counter()
        try:
            self.conn.request("POST", SOAP_PATH, body, {"Content-Type": "text/xml; charset=utf-8"})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # a dropped keep-alive connection: once more on a new one
            self.conn = _Connection("127.0.0.1", self.port, timeout=60)
            self.conn.request("POST", SOAP_PATH, body, {"Content-Type": "text/xml; charset=utf-8"})
            response = self.conn.getresponse()
            data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b"<tns:status>accepted</tns:status>" not in data \
                and b">accepted<" not in data:
            raise RuntimeError(f"task {task_id}: HTTP {response.status} {data[:300]!r}")
        return elapsed

    def close(self) -> None:
        self.conn.close()


def _cpu_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _process_jiffies(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    except (OSError, IndexError, ValueError):
        return 0


def descendants(pid: int) -> list[int]:
    """The process and all its children (gunicorn's workers, sandbox children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as children:
                queue.extend(int(c) for c in children.read().split())
        except OSError:
            pass
    return found


def database_backends(url: str) -> list[int]:
    """Process ids of the PostgreSQL backends serving the database `url` names (this run's
    connections: the scratch schema lives in a database of its own, see README)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    engine = create_engine(url.split("?")[0])
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": make_url(url).database}))
    finally:
        engine.dispose()


class CpuMeter:
    """How busy the machine's cores were during a stretch, and how much of that was ours:
    `ours` sums the process trees of `pids`; `client` is this (load-generating) process;
    `database` the PostgreSQL backends of `url`'s database (found at the end: connections
    opened during the stretch count whole)."""

    def __init__(self, pids: list[int], url: str | None = None) -> None:
        self.pids, self.url = pids, url
        self.tick = os.sysconf("SC_CLK_TCK")
        self.database = 0.0

    def __enter__(self) -> CpuMeter:
        self.started = time.monotonic()
        self.busy0, self.total0 = _cpu_jiffies()
        self.ours0 = {p: _process_jiffies(p) for p in self._all()}
        self.client0 = _process_jiffies(os.getpid())
        self.db0 = {p: _process_jiffies(p) for p in database_backends(self.url)} \
            if self.url else {}
        return self

    def _all(self) -> list[int]:
        return [p for root in self.pids for p in descendants(root)]

    def __exit__(self, *exc) -> None:
        wall = time.monotonic() - self.started
        busy, total = _cpu_jiffies()
        ours = sum(_process_jiffies(p) - self.ours0.get(p, 0) for p in self._all())
        cores = len(os.sched_getaffinity(0))
        self.cores = cores
        self.machine = (busy - self.busy0) / max(1, total - self.total0) * cores
        self.client = (_process_jiffies(os.getpid()) - self.client0) / self.tick / wall
        self.ours = ours / self.tick / wall + self.client
        if self.url:
            db = sum(_process_jiffies(p) - self.db0.get(p, 0) for p in database_backends(self.url))
            self.database = db / self.tick / wall
        self.others = max(0.0, self.machine - self.ours - self.database)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024
