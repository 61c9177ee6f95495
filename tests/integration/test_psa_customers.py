"""Per-customer overrides of a ConnectWise provider (company from the linked site, reset,
disable) and the agreement-quantity sync, against the simulated ConnectWise."""

from __future__ import annotations

import pytest

from engine.adapters import orm
from engine.exceptions import InvalidInput
from engine.jobs import engine_jobs
from engine.services import admin, customers, psa_agreements, psa_customers, psa_reports, psa_settings, tasks
from engine.worker import Worker
from tests.conftest import make_core
from tests.integration.test_connectwise_channel import MEMBER, connect, exchanges
from webservice.psa_simulator import ConnectWiseSimulator, start_simulator


@pytest.fixture
def simulator():
    running = start_simulator(ConnectWiseSimulator(**MEMBER))
    yield running
    running.stop()


@pytest.fixture
def cw(any_db_url, tmp_path, mailer, simulator):
    core = make_core(any_db_url, tmp_path, mailer)
    core.provider_id = connect(core, simulator.url)
    yield core
    core.close()


def customer(core, name: str) -> int:
    return core.run(customers.create_customer, name)["id"]


def link_site(core, provider_id: int, customer_id: int, external_id: str, name: str) -> None:
    def link(uow):
        uow.repo.add(orm.ProviderSite(provider_id=provider_id, external_id=external_id,
                                      name=name, customer_id=customer_id, details={}))
        uow.commit()
    core.run(link)


def submit(core, customer_name: str, priority: str = "normal") -> int:
    ticket = core.run(tasks.create_ticket, "Leeds offline", "", customer=customer_name)
    task_id = core.run(tasks.create_task, ticket["id"], "Router down", "", group="Managed NOC",
                       priority=priority)["id"]
    Worker(core).run_once()
    return task_id


def test_an_override_wins_and_a_reset_returns_to_the_defaults(cw, simulator):
    northwind = customer(cw, "Northwind")
    view = cw.run(psa_customers.put_customer_settings, northwind, cw.provider_id,
                  {"priority": "Priority 1 - Emergency Response", "company": "NorthwindLtd"})
    assert view["overrides"] == {"priority": "Priority 1 - Emergency Response",
                                 "company": "NorthwindLtd"}
    assert view["effective"]["priority"] == "Priority 1 - Emergency Response"
    assert view["effective"]["board"] == "Managed NOC" and view["enabled"] is True
    submit(cw, "Northwind")
    submit(cw, "ACME")
    northwind_ticket, acme_ticket = simulator.simulator.tickets()
    assert northwind_ticket["priority"]["name"] == "Priority 1 - Emergency Response"
    assert northwind_ticket["company"]["identifier"] == "NorthwindLtd"
    assert acme_ticket["priority"]["name"] == "Priority 3 - Normal Response"
    reset = cw.run(psa_customers.delete_customer_settings, northwind, cw.provider_id)
    assert reset["overrides"] == {}
    assert reset["effective"]["priority"] == "Priority 3 - Normal Response"


def test_the_company_defaults_to_the_site_linked_to_the_customer(cw, simulator):
    northwind = customer(cw, "Northwind")
    link_site(cw, cw.provider_id, northwind, "3", "Northwind Ltd")
    view = cw.run(psa_customers.get_customer_settings, northwind, cw.provider_id)
    assert view["effective"]["company"] == "3" and view["overrides"] == {}
    submit(cw, "Northwind")
    assert simulator.simulator.tickets()[0]["company"]["identifier"] == "NorthwindLtd"
    # a reset keeps the link
    cw.run(psa_customers.delete_customer_settings, northwind, cw.provider_id)
    assert cw.run(psa_customers.get_customer_settings, northwind,
                  cw.provider_id)["effective"]["company"] == "3"


def test_a_disabled_customer_sends_nothing(cw, simulator):
    northwind = customer(cw, "Northwind")
    cw.run(psa_customers.put_customer_settings, northwind, cw.provider_id, {"enabled": False})
    task_id = submit(cw, "Northwind")
    [submit_request] = exchanges(cw, task_id)
    assert submit_request["status"] == "failed" and "disabled for customer" in submit_request[
        "error"]
    assert simulator.simulator.tickets() == []
    submit(cw, "ACME")
    assert len(simulator.simulator.tickets()) == 1


@pytest.mark.parametrize(("values", "field"), [
    ({"colour": "red"}, "colour"),
    ({"agreement": "abc"}, "agreement"),
    ({"company": "NoSuchCompany"}, "company"),
    ({"board": "Nope"}, "board"),
    ({"service_type": "Nope"}, "service_type"),
    ({"enabled": "no"}, "enabled"),
])
def test_bad_overrides_name_their_field(cw, values, field):
    northwind = customer(cw, "Northwind")
    with pytest.raises(InvalidInput) as caught:
        cw.run(psa_customers.put_customer_settings, northwind, cw.provider_id, values)
    assert caught.value.field == field


def test_agreement_quantities_follow_the_asset_counts(cw, simulator):
    acme = customer(cw, "ACME")
    cw.run(psa_settings.put_mapping, cw.provider_id, "service",
           {"router": "MNOC-ROUTER", "server": "MNOC-SERVER"})
    cw.run(psa_customers.put_customer_settings, acme, cw.provider_id, {"agreement": 1})
    for name, kind in (("R1", "router"), ("R2", "Router"), ("S1", "server"), ("P1", "printer")):
        cw.run(customers.create_asset, acme, name, type=kind)
    assert psa_agreements.sync_provider(cw, cw.provider_id) == {"changed": 2, "unchanged": 0,
                                                                "errors": []}
    additions = {a["product"]["identifier"]: a for a in
                 simulator.simulator.state.rows("additions")}
    assert additions["MNOC-ROUTER"]["quantity"] == 2 and additions["MNOC-SERVER"]["quantity"] == 1
    assert psa_agreements.sync_provider(cw, cw.provider_id) == {"changed": 0, "unchanged": 2,
                                                                "errors": []}
    cw.run(customers.create_asset, acme, "R3", type="router")
    assert psa_agreements.sync_provider(cw, cw.provider_id)["changed"] == 1
    assert additions["MNOC-ROUTER"]["quantity"] == 3
    writes = [r for r in simulator.simulator.requests if r["method"] in ("POST", "PATCH")
              and "additions" in r["path"]]
    assert len(writes) == 3  # two new additions, one quantity: nothing for what did not change
    reports = cw.run(psa_agreements.sync_reports, cw.provider_id)
    assert [r["changed"] for r in reports] == [1, 0, 2]


def test_no_price_or_cost_is_sent(cw, simulator):
    acme = customer(cw, "ACME")
    cw.run(psa_settings.put_mapping, cw.provider_id, "service", {"router": "MNOC-ROUTER"})
    cw.run(psa_customers.put_customer_settings, acme, cw.provider_id, {"agreement": 1})
    cw.run(customers.create_asset, acme, "R1", type="router")
    psa_agreements.sync_provider(cw, cw.provider_id)
    [addition] = simulator.simulator.state.rows("additions")
    assert not {"unitPrice", "unitCost", "lessIncluded"} & set(addition)


def test_one_failing_agreement_does_not_stop_the_others(cw, simulator):
    acme, northwind = customer(cw, "ACME"), customer(cw, "Northwind")
    cw.run(psa_settings.put_mapping, cw.provider_id, "service", {"router": "MNOC-ROUTER"})
    cw.run(psa_customers.put_customer_settings, acme, cw.provider_id, {"agreement": 99})
    cw.run(psa_customers.put_customer_settings, northwind, cw.provider_id, {"agreement": 2})
    for customer_id in (acme, northwind):
        cw.run(customers.create_asset, customer_id, "R1", type="router")
    result = psa_agreements.sync_provider(cw, cw.provider_id)
    assert result["changed"] == 1 and len(result["errors"]) == 1
    assert "ACME: agreement 99" in result["errors"][0] and "404" in result["errors"][0]
    reported = cw.run(psa_reports.provider_errors, cw.provider_id)
    assert reported[0]["operation"] == "Agreement sync" and "agreement 99" in reported[0][
        "message"]


def test_the_nightly_job_runs_at_the_configured_hour(core):
    from datetime import UTC, datetime
    settings = core.settings.with_overrides(psa_agreement_sync_hour=3)
    job = next(j for j in engine_jobs(settings) if j.name == "psa-agreement-sync")
    assert job.next_due(datetime(2026, 1, 1, 5, 0, tzinfo=UTC)) == datetime(
        2026, 1, 2, 3, 0, tzinfo=UTC)
    assert job.start_now is False


def test_the_job_syncs_every_connected_provider(cw, simulator):
    acme = customer(cw, "ACME")
    cw.run(admin.create_provider, "Unconnected", "connectwise")
    cw.run(psa_settings.put_mapping, cw.provider_id, "service", {"router": "MNOC-ROUTER"})
    cw.run(psa_customers.put_customer_settings, acme, cw.provider_id, {"agreement": 1})
    cw.run(customers.create_asset, acme, "R1", type="router")
    assert psa_agreements.sync_all(cw) == {"providers": 1, "changed": 1, "unchanged": 0,
                                           "errors": []}
