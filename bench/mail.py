"""Provider replies per second through liaison's SMTP listener until their tags are applied,
against a raw aiosmtpd sink receiving the same messages in the same run.

end to end: smtplib → our listener, which answers 250 once the message is committed to the
            inbound mail table, while the worker (inline, as in `serve`) applies the replies
            in batches: parse, loop guards, two rules (a contains and a regex, neither
            matching), the token, `Action: Update` → note and Update/In exchange, committed.
            Timed from the first message sent until every reply is applied. → ratio=
listener:   the same rounds, timed to the last 250 (printed beside it).
raw:        smtplib → an aiosmtpd handler that returns 250 and keeps nothing.
stages:     each stage of a reply alone (one thread, no SMTP): store, parse and match the
            rules, apply in batches; their SQL statements; one durable commit's cost.

One SMTP connection per round on both sides (--connections N: N at once, as a relay opens
several). SQLite file (WAL) unless --database-url. Last line: ratio=<end to end/raw>.
Usage: python bench/mail.py [--quick] [--database-url URL] [--connections N]
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, scratch_database  # noqa: E402

OURS = "liaison@liaison.local"
SENDER = "noc@carrier.example"
TASKS = 20


class RawSink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        return "250 OK"


CONNECTIONS = 1  # SMTP connections at once (--connections), as a relay opens several


def send_one_connection(port: int, messages: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for raw in messages:
            smtp.sendmail(SENDER, [OURS], raw)


def send_all(port: int, messages: list[bytes]) -> None:
    if CONNECTIONS == 1:
        send_one_connection(port, messages)
        return
    senders = [threading.Thread(target=send_one_connection,
                                args=(port, messages[n::CONNECTIONS]))
               for n in range(CONNECTIONS)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()


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
    from bench.common import bench_core
    from engine.config import Settings
    from engine.services import admin, mail_rules, tasks

    settings = Settings(instance_path=folder, database_url=url, secret_key="bench",
                        extra={"LIAISON_MAIL_RATE_LIMIT": "100000000/600"})
    core = bench_core(settings)
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


class Pending:
    """Counts pending mail on a connection of its own that takes no write lock, so that
    watching does not slow down what is watched."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        self.engine = create_engine(url, pool_size=1)

    def count(self) -> int:
        from sqlalchemy import text
        with self.engine.connect() as connection:
            return connection.execute(
                text("SELECT count(*) FROM mail_inbox WHERE status = 'pending'")).scalar()

    def close(self) -> None:
        self.engine.dispose()


def our_rates(port: int, pending: Pending, messages: list[bytes]) -> tuple[float, float]:
    """(listener: 250s per second while the worker applies alongside,
        end to end: replies applied per second, from the first sent to the last applied)."""
    started = time.perf_counter()
    send_all(port, messages)
    listened = time.perf_counter() - started
    while pending.count():
        time.sleep(0.005)
    applied_after = time.perf_counter() - started
    return len(messages) / listened, len(messages) / applied_after


class Statements:  # SQL statements, not BEGIN, not the pool's liveness pings
    def __init__(self, engine) -> None:
        from sqlalchemy import event
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, connection, cursor, statement, *args) -> None:
        if not statement.startswith("BEGIN") and statement != "SELECT 1":
            self.count += 1


def timed(action, statements: Statements, n: int) -> tuple[float, float]:
    """(milliseconds of CPU per item, statements per item)."""
    before, cpu = statements.count, time.process_time()
    action()
    return (time.process_time() - cpu) / n * 1000, (statements.count - before) / n


def stages(core, task_ids: list[int], n: int) -> dict:
    """Each stage of a reply alone, in this thread: CPU milliseconds and statements per reply."""
    from engine.adapters.mail_parsing import parse_message
    from engine.services import mail, mail_intake, mail_rules
    statements = Statements(core.db)
    messages = replies(task_ids, n, 10_000)
    rules = core.run(mail_rules.enabled_rules)
    store = timed(lambda: [core.run(mail_intake.receive, raw, "smtp", SENDER, (OURS,))
                           for raw in messages], statements, n)
    prepare = timed(lambda: [mail_rules.first_match(rules, parse_message(raw),
                                                    mail.regex_guard()) for raw in messages],
                    statements, n)
    apply = timed(lambda: drain(mail, core), statements, n)
    return {"store": store, "prepare": prepare,
            "apply": (apply[0] - prepare[0], apply[1]), "commit": commit_floor(core)}


def drain(mail, core) -> None:
    while mail.process_inbox(core):
        pass


def commit_floor(core, n: int = 100) -> float:
    """Wall milliseconds of one durable one-row commit: the least a 250 waits for."""
    from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert
    table = Table("bench_commit_probe", MetaData(), Column("id", Integer, primary_key=True),
                  Column("body", LargeBinary))
    table.create(core.db, checkfirst=True)
    started = time.perf_counter()
    for _ in range(n):
        with core.db.begin() as connection:
            connection.execute(insert(table).values(body=b"x" * 1500))
    elapsed = (time.perf_counter() - started) / n * 1000
    table.drop(core.db)
    return elapsed


def measure(url: str, folder: Path, n: int, rounds: int) -> tuple[list, list, list, dict]:
    from engine.core import smtp_listener
    from engine.worker import start_inline
    core, task_ids = make_core(url, folder)
    port, pending = free_port(), Pending(url)
    controller = smtp_listener(core, "127.0.0.1", port)
    controller.start()
    stop = threading.Event()
    worker = start_inline(core, stop)
    try:
        our_rates(port, pending, replies(task_ids, 20, -1))  # warm caches, the regex helper
        raw_rate(replies(task_ids, 20, -1))
        raw, listener, end_to_end = [], [], []
        for round_no in range(rounds):  # interleaved, so machine noise hits both alike
            messages = replies(task_ids, n, round_no)
            raw.append(raw_rate(messages))
            heard, applied = our_rates(port, pending, messages)
            listener.append(heard)
            end_to_end.append(applied)
    finally:
        stop.set()
        core.work_available.set()
        worker.join(30)  # it may still be writing into the folder removed below
        controller.stop()
        pending.close()
    try:
        return raw, listener, end_to_end, stages(core, task_ids, min(n, 200))
    finally:
        core.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--connections", type=int, default=1,
                        help="SMTP connections at once, on both sides (default 1)")
    args = parser.parse_args()
    n, rounds = (200, 3) if args.quick else (1000, 5)
    global CONNECTIONS
    CONNECTIONS = max(1, args.connections)

    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.database_url, Path(folder)) as url:
        raw, listener, end_to_end, stage = measure(url, Path(folder), n, rounds)
    raw_rate_, heard, applied = (statistics.median(x) for x in (raw, listener, end_to_end))
    print(f"database: {url.split(':')[0]}  messages per round: {n}  rounds: {rounds}"
          f"  SMTP connections: {CONNECTIONS}")
    print(f"raw aiosmtpd sink (250, nothing kept):               {raw_rate_:8.0f} messages/s")
    print(f"liaison end to end (until every reply is applied):   {applied:8.0f} messages/s"
          f"  ratio {applied / raw_rate_:.2f}")
    print(f"liaison listener (stored before 250, worker applying): {heard:6.0f} messages/s"
          f"  ratio {heard / raw_rate_:.2f}")
    (store, store_sql), (prepare, _), (apply, apply_sql) = \
        stage["store"], stage["prepare"], stage["apply"]
    print(f"stages per reply, alone (CPU ms, SQL statements): store {store:.2f} ({store_sql:.1f})"
          f" · parse and rules {prepare:.2f} · apply in batches {apply:.2f} ({apply_sql:.1f})"
          f" · one durable commit {stage['commit']:.2f} ms wall")
    print(f"ratio={applied / raw_rate_:.2f}")


if __name__ == "__main__":
    main()
