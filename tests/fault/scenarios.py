"""The crash scenario: mixed load on two servers and two workers killed at random, then
everything counted. Used by the test (short) and by `python -m tests.fault.soak` (long)."""

from __future__ import annotations

import itertools
import json
import queue
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import bindparam, create_engine, text

from engine.services import admin, tasks
from tests.conftest import make_core
from tests.fakes import FakeMailer
from tests.fault.harness import Client, Cluster, Killer, tracebacks
from tests.integration.test_mail_support import reply
from tests.support import ROOT, liaison, wait_for
from webservice.simulator import SimulatedProvider, start_simulator

ACK = "ProcessInstanceTaskExternalAcknowledgement"


@dataclass(frozen=True)
class Load:
    seconds: float = 15.0  # how long tasks are created while processes are killed
    creators: int = 2
    kill_gap: tuple[float, float] = (2.0, 4.0)
    seed: int = 12
    drain_timeout: float = 180.0


@dataclass
class Report:
    """What the scenario counted; `problems` lists every broken promise."""

    requested: int = 0
    tasks: int = 0
    kills: list[str] = field(default_factory=list)
    acks_soap: int = 0
    acks_mail: int = 0
    outbox: dict = field(default_factory=dict)
    mail_files: int = 0
    soap_requests: int = 0
    soap_repeats: int = 0
    max_delivery_seconds: float = 0.0
    orphans: int = 0  # outbox rows a killed worker held when it died
    max_takeover_seconds: float = 0.0  # from its death to their delivery by another
    client_retries: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kills = Counter(name.rstrip("0123456789") for name in self.kills)
        return (f"tasks {self.tasks}/{self.requested}, kills {dict(kills)}, acks soap "
                f"{self.acks_soap} mail {self.acks_mail}, outbox {self.outbox}, mail files "
                f"{self.mail_files}, provider SOAP requests {self.soap_requests} (+"
                f"{self.soap_repeats} repeats answered duplicate), slowest delivery "
                f"{self.max_delivery_seconds:.1f} s, {self.orphans} rows of killed workers "
                f"taken over within {self.max_takeover_seconds:.1f} s, client retries "
                f"{self.client_retries}, "
                f"problems {len(self.problems)}")


def _seed(base: Path, url: str, provider_url: str) -> dict:
    core = make_core(url, base, FakeMailer())
    try:
        carrier = core.run(admin.create_provider, "Carrier", "email", email="noc@carrier.example")
        core.run(admin.create_provider, "Vendor", "soap", endpoint_url=provider_url)
        core.run(admin.create_group, "Carrier Group", integrated=True, provider="Carrier")
        core.run(admin.create_group, "Vendor Group", integrated=True, provider="Vendor")
        ticket = core.run(tasks.create_ticket, "Outage", "many lines down")
        core.run(admin.create_user, "loader", "loader-password", "admin")
        return {"carrier": carrier, "ticket": ticket["id"],
                "token": core.run(admin.create_token, "loader")}
    finally:
        core.close()


class CountingProvider(SimulatedProvider):
    """The simulated SOAP provider (it applies a requestId once), counting repeats too."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.calls: Counter = Counter()

    def receive(self, operation: str, request: dict) -> dict:
        self.calls[request["requestId"]] += 1
        return super().receive(operation, request)


class Clients:
    """The clients' side of the scenario: creates tasks, acknowledges them by SOAP or mail."""

    def __init__(self, cluster: Cluster, seeded: dict, base: Path, load: Load) -> None:
        self.cluster, self.seeded, self.base, self.load = cluster, seeded, base, load
        self.client = Client(cluster, seeded["token"])
        self.numbers = itertools.count()
        self.created: dict[int, int] = {}  # request number -> task id
        self.soap_acks: queue.Queue = queue.Queue()
        self.mail_acks: queue.Queue = queue.Queue()
        self.acked_by: dict[int, str] = {}
        self.errors: list[str] = []
        self.mail_dir = base / "replies"
        self.mail_dir.mkdir()

    def create(self, until: float) -> None:
        while time.monotonic() < until:
            number = next(self.numbers)
            group = "Vendor Group" if number % 3 == 2 else "Carrier Group"
            task = self.client.post_json(f"/api/v1/tickets/{self.seeded['ticket']}/tasks",
                                         {"title": f"load-{number}", "group": group},
                                         key=f"create-{number}", drop_first=number % 5 == 0)
            self.created[number] = task["id"]
            if group == "Carrier Group" and number % 2 == 0:
                self.soap_acks.put(task["id"])
            elif group == "Carrier Group" and number % 4 == 1:
                self.mail_acks.put(task["id"])

    def acknowledge_by_soap(self, done: threading.Event) -> None:
        while not (done.is_set() and self.soap_acks.empty()):
            try:
                task_id = self.soap_acks.get(timeout=0.2)
            except queue.Empty:
                continue
            answer = self.client.soap(ACK, {"taskId": task_id, "externalReference": f"REF-{task_id}",
                                            "requestId": f"ack-{task_id}"}, self.seeded["carrier"])
            self.acked_by[task_id] = "soap"
            if answer["externalReference"] != f"REF-{task_id}":
                self.errors.append(f"task {task_id} acknowledged as {answer}")

    def acknowledge_by_mail(self, done: threading.Event, rng: random.Random) -> None:
        while not (done.is_set() and self.mail_acks.empty()):
            batch = []
            while len(batch) < 5:
                try:
                    batch.append(self.mail_acks.get(timeout=0.5))
                except queue.Empty:
                    break
            if batch:
                self._ingest(batch, rng)

    def _ingest(self, batch: list[int], rng: random.Random) -> None:
        files = []
        for task_id in batch:
            path = self.mail_dir / f"ack-{task_id}.eml"
            path.write_bytes(reply(task_id, f"Ticket opened.\nExternalReference: MAIL-{task_id}",
                                   message_id=f"<ack-{task_id}@carrier.example>"))
            files.append(str(path))
        while True:  # `liaison ingest-eml`, killed now and then, run again until it finishes
            process = subprocess.Popen(liaison("ingest-eml", *files), env=self.cluster.env,
                                       cwd=ROOT, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.5, 2.0))
                process.send_signal(signal.SIGKILL)
            _, errors = process.communicate(timeout=120)
            if process.returncode == 0:
                break
            if process.returncode != -signal.SIGKILL:
                self.errors.append(f"ingest-eml exit {process.returncode}: {errors[-300:]!r}")
                break
        for task_id in batch:
            self.acked_by[task_id] = "mail"


class Orphans:
    """The outbox rows each killed worker held at its death, and when they were delivered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.held: list[tuple[datetime, int]] = []  # (death, exchange id)

    def note(self, member, pid: int) -> None:
        if member.port is not None:  # a server: it holds no outbox rows
            return
        died = datetime.now(UTC)
        engine = create_engine(self.url)
        try:
            with engine.connect() as db:
                rows = db.execute(text(
                    "SELECT exchange_id FROM outbox WHERE status = 'pending' "
                    "AND locked_by LIKE :holder"), {"holder": f"%:{pid}:%"}).scalars().all()
        finally:
            engine.dispose()
        self.held += [(died, exchange_id) for exchange_id in rows if exchange_id is not None]

    def count(self, report: Report) -> None:
        report.orphans = len(self.held)
        if not self.held:
            return
        engine = create_engine(self.url)
        try:
            with engine.connect() as db:
                query = text("SELECT id, updated_at FROM exchanges WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True))
                done = dict(db.execute(query, {"ids": [e for _, e in self.held]}).all())
        finally:
            engine.dispose()
        report.max_takeover_seconds = max((_when(done[e]) - died).total_seconds()
                                          for died, e in self.held)


def run(base: Path, url: str, load: Load = Load()) -> Report:
    """Runs the scenario against `url` (SQLite or PostgreSQL) in folder `base`."""
    provider = start_simulator("127.0.0.1", 0, CountingProvider(None, None, None))
    cluster = None
    try:
        seeded = _seed(base, url, provider.url)
        cluster = Cluster(base, url)
        orphans = Orphans(url)
        cluster.on_kill = orphans.note
        for name in ("server1", "server2"):
            cluster.add_server(name)
        for name in ("worker1", "worker2"):
            cluster.add_worker(name)
        cluster.start_all()
        clients = Clients(cluster, seeded, base, load)
        _drive(cluster, clients, load)
        cluster.revive()
        report = _count(cluster, clients, url, provider.provider, load)
        orphans.count(report)
        return report
    finally:
        if cluster is not None:
            cluster.stop()
        provider.stop()


def _drive(cluster: Cluster, clients: Clients, load: Load) -> None:
    killer = Killer(cluster, list(cluster.members), load.kill_gap, load.seed)
    done = threading.Event()
    until = time.monotonic() + load.seconds
    threads = [threading.Thread(target=clients.create, args=(until,))
               for _ in range(load.creators)]
    threads += [threading.Thread(target=clients.acknowledge_by_soap, args=(done,)),
                threading.Thread(target=clients.acknowledge_by_mail,
                                 args=(done, random.Random(load.seed)))]  # noqa: S311
    killer.start()
    for thread in threads:
        thread.start()
    for thread in threads[:load.creators]:
        thread.join()
    done.set()
    for thread in threads[load.creators:]:
        thread.join()
    killer.stop.set()
    killer.join()


def _count(cluster: Cluster, clients: Clients, url: str, provider: CountingProvider,
           load: Load) -> Report:
    report = Report(requested=len(clients.created), client_retries=clients.client.retries,
                    kills=[name for _, name in cluster.kills])
    report.problems += clients.errors
    report.problems += [f"untyped answer: {a}" for a in clients.client.untyped_faults]
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            wait_for(lambda: _quiet(db), timeout=load.drain_timeout, interval=0.5)
            _count_tasks(db, clients, report)
            _count_outbox(db, cluster, report)
        _count_provider(provider, report)
    finally:
        engine.dispose()
    report.problems += [f"log: {line}" for line in tracebacks(cluster.log_text())]
    return report


def _quiet(db) -> bool:
    db.rollback()
    pending = db.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar()
    mail = db.execute(text("SELECT count(*) FROM mail_inbox WHERE status = 'pending'")).scalar()
    return pending == 0 and mail == 0


def _count_tasks(db, clients: Clients, report: Report) -> None:
    titles = Counter(dict(db.execute(text(
        "SELECT title, count(*) FROM tasks WHERE title LIKE 'load-%' GROUP BY title")).all()))
    report.tasks = sum(titles.values())
    wanted = {f"load-{n}" for n in clients.created}
    report.problems += [f"lost: {t}" for t in wanted - set(titles)]
    report.problems += [f"doubled: {t} x{c}" for t, c in titles.items() if c != 1]
    exchanges = Counter({(t, kind): c for t, kind, c in db.execute(text(
        "SELECT task_id, request_type || '/' || direction, count(*) FROM exchanges "
        "WHERE task_id IS NOT NULL GROUP BY task_id, request_type, direction")).all()})
    instances = Counter(dict(db.execute(text(
        "SELECT task_id, count(*) FROM process_instances WHERE event = 'new_assignment' "
        "GROUP BY task_id")).all()))
    for task_id in clients.created.values():
        expected_acks = 1 if task_id in clients.acked_by else 0
        for kind, expected in (("Submit Request/Out", 1), ("Acknowledgement/In", expected_acks)):
            if exchanges[(task_id, kind)] != expected:
                report.problems.append(f"task {task_id}: {exchanges[(task_id, kind)]} x {kind}")
        if instances[task_id] != 1:
            report.problems.append(f"task {task_id}: {instances[task_id]} instances")
    report.acks_soap = sum(1 for v in clients.acked_by.values() if v == "soap")
    report.acks_mail = sum(1 for v in clients.acked_by.values() if v == "mail")


def _count_outbox(db, cluster: Cluster, report: Report) -> None:
    report.outbox = dict(db.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    if set(report.outbox) != {"done"}:
        report.problems.append(f"outbox not all delivered: {report.outbox}")
    sent = db.execute(text(
        "SELECT id, result, created_at, updated_at, channel FROM exchanges "
        "WHERE direction = 'Out' AND status = 'delivered'")).all()
    report.max_delivery_seconds = max(
        ((_when(row[3]) - _when(row[2])).total_seconds() for row in sent), default=0.0)
    folder = cluster.base / "instance" / "sent-mail"
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    report.mail_files = len(files)
    leftovers = sorted(folder.glob(".*")) if folder.is_dir() else []
    report.problems += [f"partial file left: {p.name}" for p in leftovers]
    names = set()
    for path in files:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if not mail["Message-ID"] or not mail.get_body() or "TaskId:" not in mail.get_content():
            report.problems.append(f"partial mail: {path.name}")
        names.add(str(mail["Message-ID"]))
    expected = {_result(row[1]).get("message_id") for row in sent if row[4] == "email"}
    if names != expected:
        report.problems.append(f"mail files {len(names)} != delivered e-mail exchanges "
                               f"{len(expected)}: {sorted(names ^ expected)[:5]}")


def _count_provider(provider: CountingProvider, report: Report) -> None:
    applied = Counter(r["requestId"] for r in provider.received)
    report.soap_requests = len(applied)
    report.soap_repeats = sum(provider.calls.values()) - len(applied)
    report.problems += [f"provider applied {key} x{n}" for key, n in applied.items() if n != 1]


def _when(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _result(value) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})
