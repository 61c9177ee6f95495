"""Crashes lose no mail: `liaison smtp` and `liaison worker` as separate processes, each
killed (SIGKILL) in the middle of its work and restarted; every reply is applied once."""

from __future__ import annotations

import os
import smtplib
import socket
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from engine.services import queries
from tests.conftest import free_port, make_core, seed
from tests.integration.test_mail_support import new_task, reply
from tests.support import liaison

ROOT = Path(__file__).resolve().parents[2]
REPLIES = 40

pytestmark = pytest.mark.slow


def wait_until(condition, timeout: float = 60.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def setup(tmp_path, sqlite_url, mailer):
    core = make_core(sqlite_url, tmp_path, mailer)
    seeded = seed(core)
    created = [new_task(core, seeded, title=f"line {n}") for n in range(REPLIES)]
    env = {**os.environ, "LIAISON_DATABASE_URL": sqlite_url,
           "LIAISON_INSTANCE_PATH": str(tmp_path / "instance"),
           "LIAISON_SECRET_KEY": "test-secret-key", "LIAISON_WORKERS_INLINE": "0",
           "LIAISON_MAIL_RATE_LIMIT": "1000/600",  # one sender, many replies
           "LIAISON_MAIL_BATCH": "5"}  # several transactions, so a kill can fall between
    env.pop("LIAISON_OUTBOUND_SMTP", None)
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen(liaison(*args), env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        return process

    yield core, created, start, tmp_path / "liaison-test.db"
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    core.close()


def statuses(database: Path) -> list[str]:
    """Read with a plain connection: a reader in WAL mode never waits for the worker."""
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT status FROM mail_inbox")]


def repeats(database: Path) -> list[int]:
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT repeats FROM mail_inbox ORDER BY id")]


def test_killed_listener_and_worker_lose_nothing_and_apply_each_reply_once(setup):
    core, created, start, database = setup
    port = free_port()
    listener = start("smtp", "--listen", f"127.0.0.1:{port}")
    assert wait_until(lambda: listening(port)), "liaison smtp did not start"
    replies = [reply(t["id"], f"ExternalReference: CRASH-{t['id']}",
                     message_id=f"<crash-{t['id']}@carrier.example>") for t in created]
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for raw in replies:
            smtp.sendmail("noc@carrier.example", ["liaison@liaison.local"], raw)
    listener.kill()  # crash right after the last 250: all of it must be on disk
    listener.wait(10)
    assert statuses(database) == ["pending"] * REPLIES

    first = start("worker")
    assert wait_until(lambda: "applied" in statuses(database), step=0.005)
    first.kill()  # some batches applied, maybe one half-way through its transaction
    first.wait(10)
    assert "pending" in statuses(database), "the worker finished before it could be killed"

    second_listener = start("smtp", "--listen", f"127.0.0.1:{port}")
    assert wait_until(lambda: listening(port))
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:  # a sender retrying one mail
        smtp.sendmail("noc@carrier.example", ["liaison@liaison.local"], replies[0])
    second_listener.kill()
    start("worker")
    assert wait_until(lambda: "pending" not in statuses(database)), statuses(database)

    assert statuses(database) == ["applied"] * REPLIES  # the retried mail: stored once
    assert repeats(database) == [1] + [0] * (REPLIES - 1)
    for task in created:
        acknowledgements = [e for e in core.run(queries.exchanges_of_task, task["id"])
                            if e["request_type"] == "Acknowledgement"]
        assert len(acknowledgements) == 1
        assert core.run(queries.task_detail, task["id"])["external_reference"] == \
            f"CRASH-{task['id']}"
