"""The SLA page and the dry-run report in a real browser (Debian's Chromium through
Playwright) against `liaison serve` with the demo data, as in tests/e2e/test_web_browser.py.

Eight weeks of the demo carrier's history are recorded first (the use cases, then each
exchange put at its week), so the charts have something to show. Screenshots go to
LIAISON_SCREENSHOT_DIR when set (docs/screenshots/ for the README).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.e2e import test_web_browser as web_e2e
from tests.e2e.test_web_browser import DESIGNER_PASSWORD, ROOT, api, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# The same fixtures as the web tests (a server of this module's own, Chromium, screenshots).
server, browser, context, shots = web_e2e.server, web_e2e.browser, web_e2e.context, web_e2e.shots
WEEKS = 8


def _move(core, task_id: int, request_type: str, direction: str, when: datetime) -> None:
    from engine.adapters import orm
    with core.db.begin() as connection:
        connection.execute(update(orm.Exchange).where(
            orm.Exchange.task_id == task_id, orm.Exchange.request_type == request_type,
            orm.Exchange.direction == direction).values(created_at=when))
        if request_type == "Submit Request":  # the task was opened then, too
            connection.execute(update(orm.Task).where(orm.Task.id == task_id).values(
                created_at=when - timedelta(seconds=1)))


def record_history(server) -> None:
    """Tasks of "Network Carrier" over the last eight weeks: acknowledged after 10 minutes to
    2 hours, most resolved within a day; the carrier gets slower in the later weeks."""
    from engine.config import Settings
    from engine.core import Core
    from engine.services import inbound, tasks
    source = inbound.Inbound(provider="Demo Carrier", channel="email")
    core = Core(Settings.from_env(server["env"]))
    this_monday = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    this_monday -= timedelta(days=this_monday.weekday())
    try:
        for week in range(WEEKS):
            start = this_monday - timedelta(weeks=WEEKS - 1 - week)
            for n in range(3 + week % 3):
                task = core.run(tasks.create_task, 1, f"Week {week + 1} line fault {n + 1}",
                                "", group="Network Carrier")["id"]
                core.run(inbound.acknowledge_external, task, f"DC-{week}{n}", source)
                sent = start + timedelta(hours=5 * n + week % 2)
                _move(core, task, "Submit Request", "Out", sent)
                _move(core, task, "Acknowledgement", "In",
                      sent + timedelta(minutes=10 + 12 * n + 9 * week))
                if n < 3:
                    core.run(inbound.reassign_external, task, solution="Line repaired",
                             source=source)
                    _move(core, task, "Reassigned", "In",
                          sent + timedelta(hours=3 + 2 * n + week))
    finally:
        core.close()


@pytest.fixture(scope="module")
def history(server):
    record_history(server)
    return server


def test_sla_page_charts_a_providers_weeks(context, history, shots):
    server = history
    provider = next(p for p in api(server, "GET", "/providers") if p["name"] == "Demo Carrier")
    api(server, "PUT", f"/providers/{provider['id']}/sla-targets", {"targets": [
        {"metric": "acknowledge", "minutes": 60}, {"metric": "resolve", "minutes": 480},
        {"metric": "acknowledge", "priority": "high", "minutes": 15}]})

    page = sign_in(context, server, "admin", server["creds"]["admin_password"])
    page.click("nav >> text=SLAs")
    page.wait_for_url("**/sla")
    page.select_option("#provider", "Demo Carrier")
    page.click("button:has-text('Show')")
    for metric in ("acknowledge", "resolve"):
        page.wait_for_selector(f"#chart-{metric}[data-rendered='true']")
    assert page.locator("#charts-notice").is_hidden()
    rows = page.locator("#sla-figures tbody tr").all_inner_texts()
    assert len(rows) == 2 * 12 and any("acknowledge" in r for r in rows)
    assert page.input_value("#acknowledge_high") == "15"
    chart = page.locator("#chart-acknowledge").bounding_box()
    assert chart["width"] > 200 and chart["height"] > 150
    page.screenshot(path=str(shots / "sla.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#sla-csv")
    assert download.value.suggested_filename == "sla-figures.csv"


def test_designer_dry_runs_a_new_version_against_history(context, history, shots):
    server = history
    changed = (ROOT / "processes" / "liaison_new_assignment.bpmn").read_bytes().replace(
        b'id="provider.submit_request"', b'id="provider.send_update"').replace(
        b'name="Liaison: new assignment"', b'name="Liaison: new assignment (updates only)"')
    page = sign_in(context, server, "designer", DESIGNER_PASSWORD)
    page.goto(f"{server['base']}/process-models")
    page.set_input_files("#file", files=[{"name": "liaison_new_assignment.bpmn",
                                          "mimeType": "application/xml", "buffer": changed}])
    page.click("button:has-text('Upload and validate')")
    page.wait_for_selector("h1:has-text('updates only')")

    page.click("#dry-run-link")
    page.select_option("#group", "Network Carrier")
    page.fill("#tasks", "6")
    page.click("button:has-text('Run dry-run')")
    report = page.wait_for_selector("#dry-run-report")

    summary = page.inner_text("#dry-run-summary")
    assert "6 different" in summary, summary
    first = page.locator("#dry-run-report tbody tr").first
    assert "Submit Request" in first.locator(".sent").inner_text()
    assert "Update" in first.locator(".would-send").inner_text()
    assert report.is_visible()
    page.screenshot(path=str(shots / "dry-run.png"), full_page=True)
