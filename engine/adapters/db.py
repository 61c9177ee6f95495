"""Database engines: SQLite (embedded default, WAL, foreign keys) and PostgreSQL.

PostgreSQL: one pool per process, sized to the threads that use it (`pool_size`: the server's
request threads plus the in-process worker and mail intake), so a process never waits for a
connection its threads could use and several processes stay within `max_connections`.
psycopg prepares a statement server-side once a connection has run it `PREPARE_THRESHOLD`
times; SQLAlchemy renders each hot-path statement to the same text every time (they are
built once, in the repositories), so the database plans each one once per connection.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy emit BEGIN itself so every unit of work takes the write lock up
        # front (BEGIN IMMEDIATE): a deferred reader that later writes fails with SQLITE_BUSY.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


PREPARE_THRESHOLD = 2  # psycopg's default is 5; our hot statements repeat from the start
DEFAULT_POOL_SIZE = 5


def make_engine(url: str, pool_size: int | None = None, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)  # survives a database restart; one cheap round trip
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg":
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("prepare_threshold", PREPARE_THRESHOLD)
    kwargs.setdefault("pool_size", pool_size or DEFAULT_POOL_SIZE)
    kwargs.setdefault("max_overflow", max(2, (pool_size or DEFAULT_POOL_SIZE) // 2))
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)

