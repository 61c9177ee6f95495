"""SQL statements on the ConnectWise hot paths (write-path §8): rendering a Submit Request
reads a handful of small rows (never the look-up lists but the priorities), and recording a
delivered create applies the acknowledgement in the same transaction."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from engine.services import admin, tasks
from engine.worker import Worker
from tests.integration.test_connectwise_channel import MEMBER, connect
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator


@contextmanager
def counted(core):
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(core.db, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(core.db, "before_cursor_execute", record)


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


def test_rendering_a_submit_request_adds_few_reads(core, simulator):
    connect(core, simulator.url)
    core.run(admin.create_provider, "Mail", "email", email="noc@example.com")
    core.run(admin.create_group, "Mail Group", integrated=True, provider="Mail")
    ticket = core.run(tasks.create_ticket, "t", "", customer="ACME")
    core.run(tasks.create_task, ticket["id"], "warm-up", "", group="Managed NOC")
    core.run(tasks.create_task, ticket["id"], "warm-up", "", group="Mail Group")
    with counted(core) as by_mail:
        core.run(tasks.create_task, ticket["id"], "by mail", "", group="Mail Group")
    with counted(core) as by_connectwise:
        core.run(tasks.create_task, ticket["id"], "by ConnectWise", "", group="Managed NOC",
                 priority="high")
    extra = [s for s in by_connectwise if "psa_" in s or "provider_sites" in s]
    # settings, customer overrides, linked site, priority mapping, priorities list, connection
    assert len(extra) <= 6, extra
    assert len(by_connectwise) - len(by_mail) <= 6


def test_recording_a_created_ticket_acknowledges_in_the_same_transaction(core, simulator):
    connect(core, simulator.url)
    ticket = core.run(tasks.create_ticket, "t", "", customer="ACME")
    core.run(tasks.create_task, ticket["id"], "x", "", group="Managed NOC")
    with counted(core) as statements:
        Worker(core).deliver_due()
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO EXCHANGES")]
    assert len(inserts) == 1  # the Acknowledgement/In
    # statements of the claim and of the outcome (with the acknowledgement), bounded
    assert len(statements) <= 24, statements  # 19 today
