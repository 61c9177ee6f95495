"""Real `liaison serve` / `liaison worker` processes to kill, and clients that retry the way
a careful client does: the same Idempotency-Key or requestId until an answer arrives."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from lxml import etree

from tests.conftest import free_port
from tests.fixtures.soap.helpers import PATH, envelope, security_header
from tests.support import ROOT, liaison, wait_for

SECRET = "test-secret-key"  # tests/conftest.py's make_core
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WORKFLOW = "urn:liaison:workflow"
RETRY_CODES = ("Busy: ", "ConcurrentUpdate: ")


@dataclass
class Member:
    """One process of the cluster, restartable under the same name (and port)."""

    name: str
    args: tuple[str, ...]
    port: int | None = None
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Cluster:
    """Servers and workers sharing one database and one instance folder."""

    base: Path
    database_url: str
    extra_env: dict = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    kills: list[tuple[float, str]] = field(default_factory=list)
    on_kill: Callable[[Member, int], None] | None = None  # told right after each SIGKILL

    def __post_init__(self) -> None:
        (self.base / "logs").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "LIAISON_DATABASE_URL": self.database_url,
                    "LIAISON_INSTANCE_PATH": str(self.base / "instance"),
                    "LIAISON_SECRET_KEY": SECRET, "LIAISON_WORKERS_INLINE": "0",
                    "LIAISON_MAIL_RATE_LIMIT": "100000/600", **self.extra_env}
        for name in ("LIAISON_OUTBOUND_SMTP", "LIAISON_SMTP_LISTEN", "LIAISON_IMAP_URL"):
            self.env.pop(name, None)

    def add_server(self, name: str) -> Member:
        port = free_port()
        self.members[name] = Member(name, ("serve", "--port", str(port)), port)
        return self.members[name]

    def add_worker(self, name: str) -> Member:
        self.members[name] = Member(name, ("worker",))
        return self.members[name]

    def start(self, name: str) -> None:
        member = self.members[name]
        member.starts += 1
        log = open(self.base / "logs" / f"{name}-{member.starts}.log", "wb")  # noqa: SIM115
        member.process = subprocess.Popen(liaison(*member.args), env=self.env, cwd=ROOT,
                                          stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log_of(self, name: str) -> str:
        path = self.base / "logs" / f"{name}-{self.members[name].starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_worker(self, name: str) -> None:
        """Until the worker's loop runs."""
        wait_for(lambda: re.search(r"worker \S+ started", self.log_of(name)), timeout=90,
                 interval=0.1)

    def start_all(self) -> None:
        for name in self.members:
            self.start(name)
        for member in self.servers():
            wait_for(lambda m=member: self.healthy(m), timeout=90)

    def servers(self) -> list[Member]:
        return [m for m in self.members.values() if m.port is not None]

    def healthy(self, member: Member) -> bool:
        try:
            return requests.get(f"{self.url(member)}/api/v1/health", timeout=2).ok
        except requests.RequestException:
            return False

    def url(self, member: Member) -> str:
        return f"http://127.0.0.1:{member.port}"

    def kill(self, name: str) -> None:
        member = self.members[name]
        if member.alive:
            pid = member.process.pid
            member.process.send_signal(signal.SIGKILL)
            member.process.wait(30)
            self.kills.append((time.monotonic(), name))
            if self.on_kill is not None:
                self.on_kill(member, pid)

    def revive(self) -> None:
        """Starts every member that is not running."""
        for name, member in self.members.items():
            if not member.alive:
                self.start(name)
        for member in self.servers():
            wait_for(lambda m=member: self.healthy(m), timeout=90)

    def stop(self) -> None:
        for member in self.members.values():
            if member.alive:
                member.process.send_signal(signal.SIGKILL)
                member.process.wait(30)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.base / "logs").iterdir()))


class Killer(threading.Thread):
    """SIGKILLs a random member of `names` at random moments, restarting it shortly after."""

    def __init__(self, cluster: Cluster, names: list[str], gap: tuple[float, float],
                 seed: int) -> None:
        super().__init__(daemon=True, name="killer")
        self.cluster, self.names, self.gap = cluster, names, gap
        self.random = random.Random(seed)  # noqa: S311 - chaos, not crypto
        self.stop = threading.Event()

    def run(self) -> None:
        turn = 0
        while not self.stop.wait(self.random.uniform(*self.gap)):
            # alternate kinds so every run kills servers and workers alike
            kinds = [n for n in self.names if ("server" in n) == (turn % 2 == 0)] or self.names
            self.cluster.kill(self.random.choice(kinds))
            turn += 1
            if self.stop.wait(self.random.uniform(0.3, 1.5)):
                break
            self.cluster.revive()


class Client:
    """Calls any live server, retrying with the same key until an answer comes back."""

    def __init__(self, cluster: Cluster, token: str, deadline: float = 120.0) -> None:
        self.cluster, self.token, self.deadline = cluster, token, deadline
        self.untyped_faults: list[str] = []
        self.retries = 0

    def _servers(self):
        servers = self.cluster.servers()
        while True:
            yield from random.sample(servers, len(servers))  # noqa: S311

    def post_json(self, path: str, body: dict, key: str, drop_first: bool = False) -> dict:
        """`drop_first`: the first attempt hangs up before the answer (a dropped connection
        after the request went out), as the clients in the issue's trial did."""
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key}
        give_up = time.monotonic() + self.deadline
        for server in self._servers():
            if time.monotonic() > give_up:
                raise AssertionError(f"POST {path} ({key}) got no answer in {self.deadline} s")
            timeout = (10, 0.001) if drop_first else 30
            drop_first = False
            try:
                response = requests.post(f"{self.cluster.url(server)}{path}", json=body,
                                         headers=headers, timeout=timeout)
            except requests.RequestException:
                self._pause()
                continue
            if response.status_code in (200, 201):
                return response.json()
            if response.status_code == 409 and \
                    response.json()["error"]["code"] in ("Busy", "ConcurrentUpdate"):
                self._pause()
                continue
            if response.status_code >= 500:
                self.untyped_faults.append(f"HTTP {response.status_code} {response.text[:200]}")
                self._pause()
                continue
            raise AssertionError(f"POST {path}: {response.status_code} {response.text[:300]}")

    def soap(self, operation: str, fields: dict, creds: dict) -> dict:
        give_up = time.monotonic() + self.deadline
        for server in self._servers():
            if time.monotonic() > give_up:
                raise AssertionError(f"{operation} {fields} got no answer in {self.deadline} s")
            header = security_header(creds["username"], creds["password"])
            try:
                response = requests.post(f"{self.cluster.url(server)}{PATH}",
                                         data=envelope(operation, fields, header), timeout=30,
                                         headers={"Content-Type": "text/xml; charset=utf-8"})
            except requests.RequestException:
                self._pause()
                continue
            answer = _soap_answer(response, operation)
            if isinstance(answer, dict):
                return answer
            typed = answer.startswith(RETRY_CODES) and "requestId is safe" in answer
            if not typed and not answer.startswith(("Server", "not XML")):
                raise AssertionError(f"{operation}: {answer}")  # a client fault: our bug
            if not typed:
                self.untyped_faults.append(answer)
            self._pause()

    def _pause(self) -> None:
        self.retries += 1
        time.sleep(random.uniform(0.05, 0.3))  # noqa: S311


def _soap_answer(response: requests.Response, operation: str) -> dict | str:
    """The result's fields, or the fault string."""
    try:
        root = etree.fromstring(response.content)
    except etree.XMLSyntaxError:
        return f"not XML (HTTP {response.status_code}): {response.text[:200]}"
    fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    if fault is not None:
        return fault.findtext("faultstring") or ""
    node = root.find(f".//{{{WORKFLOW}}}{operation}Result")
    return {etree.QName(child).localname: child.text for child in node}


def tracebacks(text: str) -> list[str]:
    return [line for line in text.splitlines() if "Traceback" in line or " ERROR " in line]
