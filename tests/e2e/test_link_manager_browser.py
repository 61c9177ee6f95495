"""The link manager in a real browser (Debian's Chromium through Playwright): an integration
manager enables inbound, links a site to a suggested customer, creates an asset from a device
and unlinks; an agent sees the same page read-only."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.services import admin, inbound_queue, provider_tickets
from engine.services.provider_tickets import NewTicket

pytestmark = [pytest.mark.browser]

CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def world(core, seeded):
    core.run(admin.create_user, "ivan", "ivan-password", "integration_manager")
    core.run(admin.create_user, "alice", "alice-password", "agent")
    # two tickets the provider opened while inbound was off: kept in the queue
    for reference, site, name in (("N-1", "S-1", "ACME Ltd"), ("N-2", "S-2", "Initrode")):
        core.run(provider_tickets.create_external_ticket, "Carrier",
                 NewTicket(reference=reference, title=f"Ticket {reference}", site=site,
                           site_name=name, device="D-1" if reference == "N-1" else None,
                           device_details={"name": "Core switch", "serial": "SW-9"}))
    return seeded["provider"]["id"]


def sign_in(browser, base: str, name: str, password: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/(tasks|exchanges)"))
    return page


def test_integration_manager_links_and_agent_reads_only(browser, live_server, core, world):
    page = sign_in(browser, live_server, "ivan", "ivan-password")
    page.click("nav >> text=Provider links")
    page.click("a:has-text('Carrier')")
    page.wait_for_url(re.compile(rf"/providers/{world}/links$"))
    assert page.inner_text("#inbound-queued") == "2"
    assert page.locator("tr.site").count() == 0  # sites arrive with the tickets once applied

    page.select_option("#inbound_group", "Desk")
    page.check("#inbound_enabled")
    page.click("button:has-text('Save inbound')")
    page.wait_for_selector(".flash.ok")
    inbound_queue.drain_job(core)  # what the worker's inbound-queue job does
    page.reload()
    assert page.inner_text("#inbound-state") == "enabled"
    assert page.inner_text("#inbound-queued") == "0"
    rows = page.locator("tr.site")
    assert rows.count() == 2 and page.locator("tr.site.linked").count() == 2

    acme_row = page.locator("tr.site[data-external-id='S-1']")
    acme_row.locator("button:has-text('Unlink')").click()
    page.wait_for_selector("tr.site.unlinked[data-external-id='S-1']")
    unlinked = page.locator("tr.site[data-external-id='S-1']")
    assert "ACME" in unlinked.locator(".suggestion").first.inner_text()  # name similarity
    unlinked.locator("select").select_option(label="ACME (suggested)")
    unlinked.locator("button:has-text('Link')").click()
    page.wait_for_selector("tr.site.linked[data-external-id='S-1']")
    assert "ACME" in page.locator("tr.site[data-external-id='S-1'] td").nth(2).inner_text()

    device = page.locator("tr.device[data-external-id='D-1']")
    device.locator("button:has-text('Create asset')").click()
    page.wait_for_selector("tr.device.linked[data-external-id='D-1']")
    assert "Core switch" in page.locator("tr.device[data-external-id='D-1']").inner_text()
    assert page.locator("#errors").is_visible()
    page.context.close()

    reader = sign_in(browser, live_server, "alice", "alice-password")
    reader.goto(f"{live_server}/providers/{world}/links")
    assert reader.locator("#read-only").is_visible()
    assert reader.locator("tr.site").count() == 2
    assert reader.locator("button:has-text('Unlink')").count() == 0
    assert reader.locator("button:has-text('Link')").count() == 0
    assert reader.locator("#inbound_enabled").count() == 0 and reader.locator("#errors").count() == 0
    reader.context.close()
