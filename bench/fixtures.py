"""A fast fixture loader: many tasks with their exchanges and instances, written straight to the
database (COPY on PostgreSQL, executemany on SQLite), not through the API.

- filler tasks: acknowledged long ago, each with an Acknowledgement/In exchange and a
  completed instance — the history a busy service desk piles up;
- waiting tasks: each with its Submit Request/Out exchange and an instance of the bundled
  new-assignment process waiting for ExternalAcknowledgement, its state made from a real
  instance's (the task id put in), so an acknowledgement runs the full BPMN path.

Usage: python bench/fixtures.py --database-url URL --tasks 1000000 [--waiting N]
(the database must hold a provider and an integrated group: see `seed` in bench/scale.py).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHUNK = 50_000
TASK_COLUMNS = ("id", "ticket_id", "title", "description", "group_id", "status",
                "external_reference", "solution", "solution_pending", "priority", "version",
                "created_at", "updated_at")
EXCHANGE_COLUMNS = ("task_id", "provider_id", "request_type", "direction", "channel", "status",
                    "attempts", "payload", "result", "idempotency_key", "created_at",
                    "updated_at")
INSTANCE_COLUMNS = ("task_id", "model_id", "process_id", "event", "status", "state",
                    "waiting_messages", "current_steps", "version", "created_at", "updated_at")


class _Writer:
    """Rows into one table, by COPY (PostgreSQL) or executemany (SQLite)."""

    def __init__(self, raw_connection, dialect: str) -> None:
        self.raw, self.dialect = raw_connection, dialect

    def write(self, table: str, columns: tuple, rows: list[tuple]) -> None:
        if self.dialect == "postgresql":
            with self.raw.cursor() as cursor, \
                    cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            # table and column names are this module's constants, never input
            self.raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                                 f"VALUES ({marks})", rows)


def _stamp(dialect: str, moment: datetime):
    # SQLite keeps SQLAlchemy's text form; PostgreSQL takes the datetime itself
    return moment if dialect == "postgresql" else moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _waiting_state(template: dict, task_id: int) -> str:
    """The template instance's state, made the state of an instance for `task_id`."""
    for key in template["correlations"]:
        template["correlations"][key]["task_id"] = task_id
    for task in template["tasks"].values():
        data = task.get("data") or {}
        if isinstance(data.get("task"), dict):
            data["task"]["id"] = task_id
        if "task_id" in data:
            data["task_id"] = task_id
    return json.dumps(template, separators=(",", ":"))


def _context(conn) -> dict:
    from sqlalchemy import select

    from engine.adapters import orm
    instance = conn.execute(select(orm.ProcessInstance).where(
        orm.ProcessInstance.status == "waiting").order_by(orm.ProcessInstance.id).limit(1)).first()
    if instance is None:
        raise SystemExit("seed the database first: one task waiting for acknowledgement")
    task = conn.execute(select(orm.Task).where(orm.Task.id == instance.task_id)).first()
    return {"instance": instance, "task": task,
            "first_id": (conn.execute(select(orm.Task.id).order_by(orm.Task.id.desc())
                                      .limit(1)).scalar() or 0) + 1,
            "provider_id": conn.execute(select(orm.Exchange.provider_id).where(
                orm.Exchange.task_id == task.id)).scalar()}


def _rows(ctx: dict, ids: range, waiting: bool, dialect: str, now: datetime):
    task, instance = ctx["task"], ctx["instance"]
    stamp = _stamp(dialect, now)
    template = json.loads(instance.state) if waiting else None
    tasks, exchanges, instances = [], [], []
    for i in ids:
        reference = None if waiting else f"F-{i}"
        tasks.append((i, task.ticket_id, f"fixture {i}", "", task.group_id, "open", reference,
                      None, False, "normal", 1, stamp, stamp))
        kind = ("Submit Request", "Out", "email", "delivered") if waiting else \
            ("Acknowledgement", "In", "soap", "delivered")
        exchanges.append((i, ctx["provider_id"], *kind, 1, "{}", "{}",
                          None if waiting else f"fixture-{i}", stamp, stamp))
        state = _waiting_state(template, i) if waiting else "{}"
        instances.append((i, instance.model_id, instance.process_id, "new_assignment",
                          "waiting" if waiting else "completed", state,
                          instance.waiting_messages if waiting else "",
                          json.dumps(instance.current_steps if waiting else []), 1, stamp, stamp))
    return tasks, exchanges, instances


def load(url: str, tasks: int = 0, waiting: int = 0, progress=None) -> list[int]:
    """Adds `tasks` filler and `waiting` waiting tasks; returns the waiting tasks' ids."""
    from engine.adapters.db import make_engine
    engine = make_engine(url)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        ctx = _context(conn)
    raw = engine.raw_connection()
    writer = _Writer(raw.driver_connection, dialect)
    first, now = ctx["first_id"], datetime.now(UTC)
    waiting_ids = list(range(first, first + waiting))
    try:
        for kind, start, count in (("waiting", first, waiting), ("filler", first + waiting, tasks)):
            for chunk in range(start, start + count, CHUNK):
                ids = range(chunk, min(chunk + CHUNK, start + count))
                for table, columns, rows in zip(
                        ("tasks", "exchanges", "process_instances"),
                        (TASK_COLUMNS, EXCHANGE_COLUMNS, INSTANCE_COLUMNS),
                        _rows(ctx, ids, kind == "waiting", dialect, now), strict=True):
                    writer.write(table, columns, rows)
                raw.driver_connection.commit()
                if progress:
                    progress(kind, ids.stop - start, count)
        _settle(raw.driver_connection, dialect)
    finally:
        raw.close()
        engine.dispose()
    return waiting_ids


def _settle(connection, dialect: str) -> None:
    """A database in steady state, not one that just took a million rows: sequences past the
    ids written, the WAL folded back (SQLite), vacuumed with fresh planner statistics (PG)."""
    if dialect == "sqlite":
        connection.execute("ANALYZE")
        connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('tasks', 'id'), max(id)) FROM tasks")
    connection.commit()
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.autocommit = False


def count_tasks(url: str) -> int:
    from sqlalchemy import func, select

    from engine.adapters import orm
    from engine.adapters.db import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(orm.Task))
    engine.dispose()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tasks", type=int, default=0, help="filler tasks to add")
    parser.add_argument("--waiting", type=int, default=0, help="waiting tasks to add")
    args = parser.parse_args()
    started = time.perf_counter()
    load(args.database_url, args.tasks, args.waiting,
         progress=lambda kind, done, total: print(f"{kind}: {done:,}/{total:,}", file=sys.stderr))
    rate = (args.tasks + args.waiting) / (time.perf_counter() - started)
    print(f"loaded {args.tasks + args.waiting:,} tasks with their exchanges and instances "
          f"({rate:,.0f} tasks/s)")


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    main()
