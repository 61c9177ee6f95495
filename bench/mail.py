"""Provider replies per second through liaison's SMTP listener with their tags applied,
against a raw aiosmtpd sink receiving the same messages in the same run.

listener:   smtplib → our listener, which answers 250 once the message is committed to the
            inbound mail table, while the worker (inline, as in `serve`) applies the tags:
            parse, loop guards, two automated rules (a contains and a regex, neither
            matching), the token, `Action: Update` → note and Update/In exchange, committed.
            Timed from the first message sent to the last 250.  → the main ratio
end to end: the same rounds, timed until the last message is applied (printed with its
            own ratio: it is bound by the worker, not by the listener).
raw:        smtplib → an aiosmtpd handler that returns 250 and keeps nothing.

One SMTP connection per round on both sides. SQLite file (WAL) unless --database-url.
Last line: ratio=<listener/raw>. Usage: python bench/mail.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OURS = "liaison@liaison.local"
SENDER = "noc@carrier.example"
TASKS = 20


class RawSink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        return "250 OK"


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send_all(port: int, messages: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for raw in messages:
            smtp.sendmail(SENDER, [OURS], raw)


def raw_rate(messages: list[bytes]) -> float:
    from aiosmtpd.controller import Controller
    port = free_port()
    controller = Controller(RawSink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        started = time.perf_counter()
        send_all(port, messages)
        return len(messages) / (time.perf_counter() - started)
    finally:
        controller.stop()


def make_core(url: str, folder: Path):
    from engine.config import Settings
    from engine.core import Core
    from engine.services import admin, mail_rules, tasks
    from engine.services.demo import deploy_bundled

    class NullMailer:
        def send(self, message):
            pass

    settings = Settings(instance_path=folder, database_url=url, secret_key="bench",
                        extra={"LIAISON_MAIL_RATE_LIMIT": "100000000/600"})
    core = Core(settings, mailer=NullMailer())
    core.migrate()
    deploy_bundled(core)
    core.run(admin.create_provider, "Carrier", "email", email=SENDER)
    core.run(admin.create_group, "Carrier Group", integrated=True, provider="Carrier")
    ticket = core.run(tasks.create_ticket, "bench")
    task_ids = [core.run(tasks.create_task, ticket["id"], f"line {n}", "x",
                         group="Carrier Group")["id"] for n in range(TASKS)]
    core.run(mail_rules.create_rule, name="alerts", action="skip",
             conditions=[{"field": "from", "match": "contains", "value": "nagios@"}])
    core.run(mail_rules.create_rule, name="outages", action="skip",
             conditions=[{"field": "subject", "match": "regex", "value": r"PROBLEM .* DOWN"}])
    return core, task_ids


def replies(task_ids: list[int], count: int, round_no: int) -> list[bytes]:
    from email.message import EmailMessage

    from engine.domain.credentials import task_token
    messages = []
    for n in range(count):
        task_id = task_ids[n % len(task_ids)]
        mail = EmailMessage()
        mail["From"], mail["To"] = f"NOC <{SENDER}>", OURS
        mail["Subject"] = f"Re: [Task #{task_id}] Submit Request: line"
        mail["Message-ID"] = f"<bench-{round_no}-{n}@carrier.example>"
        mail.set_content(f"Engineer update {n}: still investigating.\n\nAction: Update\n\n"
                         f"On Mon, 23 Nov 2026, liaison wrote:\n> TaskId: {task_id}\n"
                         f"> Token: {task_token('bench', task_id)}\n")
        messages.append(bytes(mail))
    return messages


def our_rates(core, port: int, messages: list[bytes]) -> tuple[float, float]:
    """(listener: 250s per second while the worker applies tags alongside,
        end to end: replies applied per second, from the first sent to the last applied)."""
    from engine.adapters.mail_repository import MailRepository
    from engine.services import mail_outcome
    started = time.perf_counter()
    send_all(port, messages)
    listened = time.perf_counter() - started
    while core.run(lambda uow: MailRepository(uow.session).pending_mail(1)):
        time.sleep(0.002)
    applied_after = time.perf_counter() - started
    applied = core.run(mail_outcome.list_messages, "applied", 100_000)
    assert len(applied) >= len(messages), "not every reply was applied"
    return len(messages) / listened, len(messages) / applied_after


@contextmanager
def scratch_database(url: str | None, folder: str):
    """A SQLite file in `folder`, or a schema of its own in the given PostgreSQL database
    (dropped afterwards), so that a benchmark never writes into anybody's tables."""
    if not url or not url.startswith("postgresql"):
        yield url or f"sqlite:///{folder}/bench.db"
        return
    from sqlalchemy import create_engine, text
    schema = f"bench_mail_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    n, rounds = (200, 3) if args.quick else (1000, 5)

    from engine.core import smtp_listener
    from engine.worker import start_inline
    with tempfile.TemporaryDirectory() as folder, scratch_database(args.database_url,
                                                                   folder) as url:
        core, task_ids = make_core(url, Path(folder))
        port = free_port()
        controller = smtp_listener(core, "127.0.0.1", port)
        controller.start()
        stop = threading.Event()
        worker = start_inline(core, stop)
        try:
            our_rates(core, port, replies(task_ids, 20, -1))  # warm caches, the regex helper
            raw_rate(replies(task_ids, 20, -1))
            raw, listener, end_to_end = [], [], []
            for round_no in range(rounds):  # interleaved, so machine noise hits both alike
                messages = replies(task_ids, n, round_no)
                raw.append(raw_rate(messages))
                heard, applied = our_rates(core, port, messages)
                listener.append(heard)
                end_to_end.append(applied)
        finally:
            stop.set()
            core.work_available.set()
            worker.join(30)  # it may still be writing into the folder removed below
            controller.stop()
            core.close()
    raw_rate_, heard, applied = (statistics.median(x) for x in (raw, listener, end_to_end))
    print(f"database: {url.split(':')[0]}  messages per round: {n}  rounds: {rounds}")
    print(f"raw aiosmtpd sink (250, nothing kept):                  {raw_rate_:8.0f} messages/s")
    print(f"liaison end to end (received, rules, token, applied):    {applied:8.0f} messages/s"
          f"  ratio {applied / raw_rate_:.2f}")
    print(f"liaison listener (stored before 250, worker applying):   {heard:8.0f} messages/s")
    print(f"ratio={heard / raw_rate_:.2f}")

if __name__ == "__main__":
    main()
