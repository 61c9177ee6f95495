"""The ConnectWise demo in a real browser against `liaison serve` as `make run` starts it
(LIAISON_DEMO_PROVIDER=1: the simulated ConnectWise is served in-process): the demo's
Managed NOC task is a ticket over there, and an admin sets a per-customer override on the
provider's page and resets it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import pytest

from tests.conftest import free_port
from tests.e2e import test_web_browser as web
from tests.e2e.test_web_browser import ROOT, run_cli, sign_in, wait_for_health
from tests.support import liaison, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]
browser, context = web.browser, web.context  # the same Chromium fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("psa-instance")
    port = free_port()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(instance),
           "LIAISON_DATABASE_URL": f"sqlite:///{instance / 'liaison.db'}",
           "LIAISON_PORT": str(port), "LIAISON_WORKERS_INLINE": "1",
           "LIAISON_DEMO_PROVIDER": "1"}
    env.pop("LIAISON_SECRET_KEY", None)
    run_cli(env, "init-db")
    run_cli(env, "demo")
    log = (instance / "serve.log").open("w")
    process = subprocess.Popen(liaison("serve", "--port", str(port)), env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process)
        creds = json.loads((instance / "demo-credentials.json").read_text())
        yield {"base": base, "creds": creds, "instance": instance}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


def simulator_tickets(server) -> list[dict]:
    with urllib.request.urlopen(f"{server['base']}/demo-psa/_sim/state", timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read()).get("tickets", [])


def test_the_demo_task_is_a_ticket_on_the_simulated_connectwise(server):
    tickets = wait_for(lambda: simulator_tickets(server), timeout=60)
    ticket = tickets[0]
    assert ticket["board"]["name"] == "Managed NOC"
    assert ticket["priority"]["name"] == "Priority 2 - Quick Response"  # "high", mapped
    assert ticket["externalXRef"].startswith("liaison:")


def test_admin_overrides_a_setting_for_a_customer_and_resets_it(context, server):
    page = sign_in(context, server, "admin", server["creds"]["admin_password"])
    page.goto(f"{server['base']}/providers")
    page.click("a:has-text('NOC Partner')")
    page.wait_for_selector("#connection-title")
    assert page.input_value("#private_key") == ""  # the key is never sent to the browser
    page.select_option("#customer", label="ACME Retail")
    page.click("button:has-text('Settings for this customer')")
    page.wait_for_selector("#overrides-title")
    assert "Priority 3 - Normal Response" in page.inner_text("#effective-priority")
    page.select_option("#priority", "Priority 1 - Emergency Response")
    page.click("button:has-text('Save for this customer')")
    page.wait_for_selector("text=Settings for this customer saved.")
    effective = page.inner_text("#effective-priority")
    assert "Priority 1 - Emergency Response" in effective and "override" in effective
    page.click("button:has-text('Reset to organisation default')")
    page.wait_for_selector("text=Back to the organisation defaults.")
    assert page.inner_text("#effective-priority").strip() == "Priority 3 - Normal Response"
    assert page.input_value("#priority") == ""
