"""Customers and assets as the engine keeps them (CONTRACT §7), on SQLite and PostgreSQL:
the migration of existing tickets, our own business, customers named by tickets, merging."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import select, text

from engine.adapters import migrate, orm
from engine.adapters.db import make_engine
from engine.exceptions import Conflict, InvalidInput, NotFound
from engine.services import customers, tasks
from engine.services.operators import task_variable, ticket_variable
from tests.conftest import seed
from tests.support import ROOT, liaison

PREVIOUS = "0003"  # the revision before customers existed


# -- the migration ------------------------------------------------------------------------------

def _insert_old_tickets(engine) -> None:
    rows = [(1, "ACME"), (2, " ACME "), (3, None), (4, "Globex"), (5, "   "), (6, "acme")]
    with engine.begin() as connection:
        for ticket_id, customer in rows:
            connection.execute(text(
                "INSERT INTO tickets (id, title, description, customer, created_at) "
                "VALUES (:id, :title, '', :customer, :at)"),
                {"id": ticket_id, "title": f"old {ticket_id}", "customer": customer,
                 "at": "2026-01-05 10:00:00+00:00"})
        connection.execute(text(
            "INSERT INTO tasks (ticket_id, title, description, status, solution_pending, "
            "priority, version, created_at, updated_at) VALUES (1, 'old task', '', 'open', "
            ":no, 'normal', 1, :at, :at)"), {"no": False, "at": "2026-01-05 10:00:00+00:00"})


def _customer_of_tickets(engine) -> dict[int, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT t.id, c.name FROM tickets t LEFT JOIN customers c ON c.id = t.customer_id"))
        return dict(rows.all())


def test_upgrade_turns_customer_strings_into_customers_and_links_the_tickets(any_db_url):
    engine = make_engine(any_db_url)
    try:
        migrate.upgrade(engine, PREVIOUS)
        _insert_old_tickets(engine)
        migrate.upgrade(engine)
        with engine.connect() as connection:
            created = connection.execute(text(
                "SELECT name, own FROM customers ORDER BY name")).all()
        # one customer per distinct trimmed string (case kept: "acme" was typed so)
        assert [(name, bool(own)) for name, own in created] == [
            ("ACME", False), ("Globex", False), ("acme", False)]
        assert _customer_of_tickets(engine) == {1: "ACME", 2: "ACME", 3: None, 4: "Globex",
                                                5: None, 6: "acme"}

        config = migrate.alembic_config(engine)
        with engine.begin() as connection:  # and back: the strings return
            config.attributes["connection"] = connection
            command.downgrade(config, PREVIOUS)
        with engine.connect() as connection:
            back = dict(connection.execute(text("SELECT id, customer FROM tickets")).all())
            assert connection.execute(text("SELECT count(*) FROM tasks")).scalar() == 1
        assert back == {1: "ACME", 2: "ACME", 3: None, 4: "Globex", 5: None, 6: "acme"}
    finally:
        engine.dispose()


def test_migrated_tickets_show_their_customer_by_name(tmp_path, mailer):
    from tests.conftest import make_core
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine, PREVIOUS)
    _insert_old_tickets(engine)
    engine.dispose()
    core = make_core(url, tmp_path, mailer)  # migrates to the newest revision
    try:
        assert core.run(tasks.get_task, 1)["customer"] == "ACME"
        opened = core.run(tasks.create_ticket, "new", customer="ACME")
        assert opened["customer"] == "ACME"
        assert len(core.run(customers.list_customers, "acme")) == 2  # no third one
    finally:
        core.close()


# -- our own business ---------------------------------------------------------------------------

def _own(core) -> list[dict]:
    return [c for c in core.run(customers.list_customers) if c["own"]]


def test_our_own_business_is_created_once_and_follows_its_setting(any_core):
    first = any_core.run(customers.ensure_own_customer)
    again = any_core.run(customers.ensure_own_customer)
    assert first == again and first["name"] == "Own business" and first["own"] is True
    any_core.settings = replace(any_core.settings, extra={"LIAISON_OWN_CUSTOMER": " Acme MSP "})
    renamed = any_core.run(customers.ensure_own_customer)
    assert (renamed["id"], renamed["name"]) == (first["id"], "Acme MSP")
    assert [c["name"] for c in _own(any_core)] == ["Acme MSP"]


def test_tickets_stored_without_a_customer_become_our_own_business_at_init_db(any_core):
    # a ticket stored before our own business existed (older versions kept customer null)
    old = any_core.run(tasks.create_ticket, "stored by an older version")
    assert old["customer"] is None
    named = any_core.run(tasks.create_ticket, "named", customer="Globex")
    own = any_core.run(customers.ensure_own_customer)  # what `liaison init-db` runs
    customer_of = any_core.run(lambda uow: {t.id: t.customer_id for t in
                                            uow.repo.session.scalars(select(orm.Ticket))})
    assert customer_of[old["id"]] == own["id"]
    assert customer_of[named["id"]] != own["id"]  # a ticket naming a customer keeps it


def test_a_customer_already_named_like_our_business_becomes_it(any_core):
    any_core.run(tasks.create_ticket, "old", customer="Own business")
    own = any_core.run(customers.ensure_own_customer)
    assert [(c["id"], c["own"]) for c in any_core.run(customers.list_customers)] == \
        [(own["id"], True)]


def test_renaming_our_business_onto_another_customer_is_refused(any_core):
    any_core.run(customers.ensure_own_customer)
    any_core.run(customers.create_customer, "Globex")
    any_core.settings = replace(any_core.settings, extra={"LIAISON_OWN_CUSTOMER": "Globex"})
    with pytest.raises(Conflict, match="another customer has that name"):
        any_core.run(customers.ensure_own_customer)
    assert [c["name"] for c in _own(any_core)] == ["Own business"]


def test_the_database_refuses_a_second_own_customer(any_core):
    any_core.run(customers.ensure_own_customer)

    def second(uow):
        uow.repo.add(orm.Customer(name="Impostor", own=True, notes=""))
        uow.commit()
    with pytest.raises(Exception, match="(?i)unique"):
        any_core.run(second)
    assert len(_own(any_core)) == 1


def test_init_db_creates_our_own_business_named_by_the_setting_idempotently(tmp_path):
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "inst"),
           "LIAISON_DATABASE_URL": f"sqlite:///{tmp_path / 'inst' / 'cli.db'}",
           "LIAISON_OWN_CUSTOMER": "Northwind IT"}
    for _ in range(2):
        result = subprocess.run(liaison("init-db"), capture_output=True, text=True, env=env,
                                cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "own business: Northwind IT" in result.stdout
    engine = make_engine(env["LIAISON_DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, own FROM customers")).all()
    engine.dispose()
    assert [(name, bool(own)) for name, own in rows] == [("Northwind IT", True)]


# -- tickets name their customer ------------------------------------------------------------------

def test_a_ticket_names_its_customer_and_an_unknown_name_creates_it(any_core):
    first = any_core.run(tasks.create_ticket, "Link down", customer="  Initech ")
    same = any_core.run(tasks.create_ticket, "Printer", customer="INITECH")
    ours = any_core.run(tasks.create_ticket, "Internal", customer="  ")
    assert (first["customer"], same["customer"], ours["customer"]) == ("Initech", "Initech", None)
    assert first["customer_id"] == same["customer_id"] and ours["customer_id"] is None
    assert [c["name"] for c in any_core.run(customers.list_customers)] == ["Initech"]
    with pytest.raises(InvalidInput) as refused:
        any_core.run(tasks.create_ticket, "Too long", customer="x" * 201)
    assert refused.value.field == "customer"


def test_processes_and_the_task_view_see_the_customer_as_its_name(any_core):
    data = seed(any_core)  # ticket of customer "ACME"
    task = any_core.run(tasks.create_task, data["ticket"]["id"], "Router", group="Desk")
    assert task["customer"] == "ACME"

    def variables(uow):
        row = uow.repo.task(task["id"])
        return task_variable(row), ticket_variable(row.ticket)
    task_vars, ticket_vars = any_core.run(variables)
    assert task_vars["customer"] == ticket_vars["customer"] == "ACME"


# -- merging --------------------------------------------------------------------------------------

def _site(uow, provider_id: int, external_id: str, customer_id: int) -> None:
    uow.repo.add(orm.ProviderSite(provider_id=provider_id, external_id=external_id,
                                  name=f"Site {external_id}", customer_id=customer_id, details={}))
    uow.commit()


def test_merging_moves_tickets_assets_and_site_links_and_deletes_the_merged(any_core):
    data = seed(any_core)
    own = any_core.run(customers.ensure_own_customer)
    auto = any_core.run(tasks.create_ticket, "From the PSA",
                        customer="[Carrier AUTO CREATED] ACME Leeds")
    merged_id = auto["customer_id"]
    acme_id = data["ticket"]["customer_id"]
    any_core.run(customers.create_asset, merged_id, "LDS-RTR-1", serial="S1")
    any_core.run(customers.create_asset, acme_id, "HQ-FW")
    any_core.run(customers.update_customer, merged_id, notes="Leeds branch")
    any_core.run(_site, data["provider"]["id"], "17", merged_id)

    kept = any_core.run(customers.merge_customers, merged_id, acme_id)
    assert (kept["id"], kept["name"], kept["asset_count"]) == (acme_id, "ACME", 2)
    assert kept["moved"] == {"tickets": 1, "assets": 1, "sites": 1}
    assert "Leeds branch" in kept["notes"]
    assert any_core.run(tasks.get_task, any_core.run(
        tasks.create_task, auto["id"], "t")["id"])["customer"] == "ACME"
    assert any_core.run(lambda uow: uow.repo.provider_site(data["provider"]["id"], "17")
                        .customer_id) == acme_id
    with pytest.raises(NotFound):
        any_core.run(customers.get_customer, merged_id)
    with pytest.raises(Conflict, match="own business"):
        any_core.run(customers.merge_customers, own["id"], acme_id)
    with pytest.raises(InvalidInput) as itself:
        any_core.run(customers.merge_customers, acme_id, acme_id)
    assert itself.value.field == "into"
    with pytest.raises(InvalidInput) as unknown:
        any_core.run(customers.merge_customers, acme_id, 9999)
    assert unknown.value.field == "into"


def test_deleting_an_asset_unlinks_the_providers_device(any_core):
    data = seed(any_core)
    acme_id = data["ticket"]["customer_id"]
    asset = any_core.run(customers.create_asset, acme_id, "LDS-RTR-1", type="router")

    def device(uow):
        uow.repo.add(orm.ProviderDevice(provider_id=data["provider"]["id"], external_id="C-9",
                                        name="LDS-RTR-1", asset_id=asset["id"], details={}))
        uow.commit()
    any_core.run(device)
    any_core.run(customers.delete_asset, acme_id, asset["id"])
    assert any_core.run(customers.list_assets, acme_id) == []
    assert any_core.run(lambda uow: uow.repo.provider_device(data["provider"]["id"], "C-9")
                        .asset_id) is None


def test_two_writers_naming_one_new_customer_at_once_share_it(postgres_url, tmp_path, mailer):
    """PostgreSQL: the second writer waits for the first (its turn at the name) and then
    finds its row."""
    import threading

    from tests.conftest import make_core
    from tests.support import wait_for
    core = make_core(postgres_url, tmp_path, mailer)
    first = core.uow().__enter__()
    try:
        first.repo.customer_named("Zeta Corp")
        first.repo.flush()  # inserted, not committed: the other writer cannot see it yet
        opened = {}
        second = threading.Thread(target=lambda: opened.update(
            core.run(tasks.create_ticket, "Also Zeta", customer="Zeta Corp")))
        second.start()

        def waiting_on_lock(uow):
            return uow.session.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND (query LIKE 'INSERT INTO customers%' "
                "OR query LIKE 'SELECT pg_advisory_xact_lock%')")).scalar()
        wait_for(lambda: core.run(waiting_on_lock))
        first.commit()
        second.join(60)
        assert opened["customer"] == "Zeta Corp"
        assert [c["name"] for c in core.run(customers.list_customers)] == ["Zeta Corp"]
    finally:
        first.__exit__(None, None, None)
        core.close()
