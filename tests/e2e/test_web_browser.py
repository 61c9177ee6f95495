"""The web UI in a real browser (Debian's Chromium through Playwright) against `liaison serve`.

The server is the installed console script on a loopback port with its own instance folder,
after `liaison init-db` and `liaison demo`, exactly as `make run` starts it.
Screenshots go to LIAISON_SCREENSHOT_DIR when set (docs/screenshots/ for the README).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support import liaison

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking"]
DESIGNER_PASSWORD = "designer-password"


def run_cli(env: dict, *args: str, stdin: str = "") -> str:
    result = subprocess.run(liaison(*args), env=env, cwd=ROOT, input=stdin,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"liaison {' '.join(args)}: {result.stderr}"
    return result.stdout


def wait_for_health(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"liaison serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("liaison serve did not answer /api/v1/health within 60 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`liaison serve` with demo data, stopped after the module's tests."""
    instance = tmp_path_factory.mktemp("web-instance")
    port = free_port()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(instance),
           "LIAISON_DATABASE_URL": f"sqlite:///{instance / 'liaison.db'}",
           "LIAISON_PORT": str(port), "LIAISON_WORKERS_INLINE": "1"}
    env.pop("LIAISON_SECRET_KEY", None)
    run_cli(env, "init-db")
    run_cli(env, "demo")
    run_cli(env, "create-user", "designer", "--role", "designer", stdin=DESIGNER_PASSWORD + "\n")
    log = (instance / "serve.log").open("w")
    process = subprocess.Popen(liaison("serve", "--port", str(port)), env=env,
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, process)
        creds = json.loads((instance / "demo-credentials.json").read_text())
        yield {"base": base, "env": env, "creds": creds, "instance": instance}
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server's own process group only
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("LIAISON_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(context, server, name: str, password: str):
    page = context.new_page()
    page.goto(f"{server['base']}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button:has-text('Sign in')")
    signed_in(page, re.compile(r"/(tasks|process-models|exchanges)"))
    return page


def signed_in(page, url: re.Pattern) -> None:
    """Waits for the page after sign-in; on failure says what the login page said."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_url(url)
    except PlaywrightTimeout:
        pytest.fail(f"sign-in did not get past {page.url}: {page.inner_text('main')[:500]}")


def agent(context, server):
    return sign_in(context, server, "agent", server["creds"]["agent_password"])


def api(server, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        f"{server['base']}/api/v1{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {server['creds']['api_token']}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def open_ticket(page, server, title: str, group: str = "Service Desk") -> int:
    page.goto(f"{server['base']}/tickets/new")
    page.fill("#title", title)
    page.fill("#description", "Reported by the branch manager.")
    page.select_option("#group", group)
    page.click("button:has-text('Open ticket')")
    page.wait_for_url(re.compile(r"/tasks/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def timeline(page) -> list[str]:
    return page.locator(".exchange .request-type").all_inner_texts()


def receive_solution(server, task_id: int, solution: str) -> None:
    """The provider hands the task back with a solution (the inbound use case, as SOAP or
    mail would call it), through a second Core on the same database."""
    from engine.config import Settings
    from engine.core import Core
    from engine.services import inbound
    core = Core(Settings.from_env(server["env"]))
    try:
        core.run(inbound.reassign_external, task_id, solution=solution,
                 source=inbound.Inbound(provider="Demo Carrier", channel="email"))
    finally:
        core.close()


def test_sign_in_by_keyboard_and_sign_out(context, server):
    page = context.new_page()
    page.goto(f"{server['base']}/tasks")
    assert "/login" in page.url
    # autofocus lands on the name field once the page is ready; typing earlier loses keys
    page.wait_for_function("document.activeElement && document.activeElement.id === 'name'")
    page.keyboard.type("agent")
    page.keyboard.press("Tab")
    page.keyboard.type(server["creds"]["agent_password"])
    page.keyboard.press("Enter")
    signed_in(page, re.compile(r"/tasks$"))
    assert page.get_by_role("heading", name="Tasks").is_visible()
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login$"))
    assert "You are signed out." in page.content()


def test_agent_flow_from_assignment_to_closure(context, server, shots):
    page = agent(context, server)
    task_id = open_ticket(page, server, "Leeds WAN link flapping")
    page.select_option("#assign-group", "Network Carrier")
    page.click("button:has-text('Assign')")
    page.wait_for_selector(".exchange .request-type:has-text('Submit Request')")
    for _ in range(50):  # the inline worker delivers it within moments
        if page.locator(".exchange .badge.delivered").count():
            break
        time.sleep(0.2)
        page.reload()
    assert page.locator(".exchange .badge.delivered").count() == 1

    page.fill("#update-text", "Customer reports packet loss since 09:00.")
    page.click("button:has-text('Add update')")
    page.wait_for_selector("text=Update added.")
    assert timeline(page)[-1] == "Update"
    assert page.locator("button:has-text('Decline solution')").count() == 0

    receive_solution(server, task_id, "Replaced the line card at the exchange.")
    page.reload()
    assert "Replaced the line card" in page.inner_text(".solution")
    page.fill("#reason", "The link still drops every hour.")
    page.click("button:has-text('Decline solution')")
    page.wait_for_selector("text=Solution declined")
    assert "Resolution Rejection" in timeline(page)
    assert page.locator("button:has-text('Decline solution')").count() == 0
    page.screenshot(path=str(shots / "task.png"), full_page=True)

    page.fill("#solution", "Carrier replaced the CPE; stable for 24 hours.")
    page.click("button:has-text('Close task')")
    page.wait_for_selector("text=Task closed.")
    assert timeline(page)[-1] == "Closed"
    assert page.locator("#update-text").count() == 0
    page.goto(f"{server['base']}/tasks?status=all")
    page.screenshot(path=str(shots / "inbox.png"), full_page=True)


def test_script_in_a_title_is_shown_as_text(context, server):
    page = agent(context, server)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_ticket(page, server, "<script>alert(1)</script>")
    assert page.inner_text(".task-title") == "<script>alert(1)</script>"
    page.goto(f"{server['base']}/tasks")
    assert page.get_by_role("link", name="<script>alert(1)</script>").count() >= 1
    assert dialogs == []


def test_post_without_csrf_token_is_refused(context, server):
    page = agent(context, server)
    task_id = open_ticket(page, server, "CSRF target")
    response = page.request.post(f"{server['base']}/tasks/{task_id}/updates",
                                 form={"text": "forged update"})
    assert response.status == 400 and "CSRF" in response.text()
    page.reload()
    assert "forged update" not in page.content()


def test_agent_gets_403_on_providers_and_404_on_other_groups_tasks(context, server):
    api(server, "POST", "/groups", {"name": "Back Office", "integrated": False})
    hidden = api(server, "POST", "/tickets/1/tasks", {"title": "Payroll question",
                                                      "group": "Back Office"})
    page = agent(context, server)
    forbidden = page.goto(f"{server['base']}/providers")
    assert forbidden.status == 403 and "Your role does not allow this page" in page.content()
    missing = page.goto(f"{server['base']}/tasks/{hidden['id']}")
    assert missing.status == 404 and "Payroll question" not in page.content()
    assert "Traceback" not in page.content()


def test_inbox_reads_on_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = agent(context, server)
        page.goto(f"{server['base']}/tasks/1")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
    finally:
        context.close()


def broken_bpmn() -> tuple[bytes, int]:
    from lxml import etree
    bad = (ROOT / "processes" / "liaison_new_assignment.bpmn").read_bytes().replace(
        b"</bpmn:serviceTask>", b"</bpmn:serviceTsak>", 1)
    try:
        etree.fromstring(bad)
    except etree.XMLSyntaxError as exc:
        return bad, exc.lineno
    raise AssertionError("should not parse")


def upload(page, data: bytes) -> None:
    page.set_input_files("#file", files=[{"name": "liaison_new_assignment.bpmn",
                                          "mimeType": "application/xml", "buffer": data}])
    page.click("button:has-text('Upload and validate')")
    page.wait_for_load_state()


def test_designer_fixes_an_error_and_sees_version_2_drawn(context, server, shots):
    from forms.web_designer import viewer_installed
    assert viewer_installed(), "bpmn-js is not installed: run tools/fetch_bpmn_js.sh (make does)"
    page = sign_in(context, server, "designer", DESIGNER_PASSWORD)
    page.goto(f"{server['base']}/process-models")
    bad, line = broken_bpmn()
    upload(page, bad)
    assert f"Line {line}:" in page.inner_text("#upload-errors")

    fixed = (ROOT / "processes" / "liaison_new_assignment.bpmn").read_bytes().replace(
        b'name="Liaison: new assignment"', b'name="Liaison: new assignment (v2)"')
    upload(page, fixed)
    assert "version 2" in page.inner_text("h1")
    page.wait_for_selector("#diagram[data-rendered='true']")
    for shape in ("assigned", "submit_request", "wait_acknowledgement", "no_acknowledgement"):
        assert page.locator(f"#diagram svg g[data-element-id='{shape}']").count() == 1, shape

    instance = api(server, "GET", "/process-instances?task_id=1")[0]
    page.goto(f"{server['base']}/process-models/{instance['model_id']}?instance={instance['id']}")
    page.wait_for_selector("#diagram[data-rendered='true']")
    highlighted = {g.get_attribute("data-element-id")
                   for g in page.locator("#diagram g.current-step").all()}
    assert "wait_acknowledgement" in highlighted  # (with its waiting boundary timer)
    assert "submit_request" not in highlighted
    page.screenshot(path=str(shots / "designer.png"), full_page=True)


def test_admin_creates_a_provider_and_sees_the_password_once(context, server):
    page = sign_in(context, server, "admin", server["creds"]["admin_password"])
    page.goto(f"{server['base']}/providers")
    page.fill("#name", "Fibre Co")
    page.select_option("#channel", "soap")
    page.fill("#endpoint_url", "http://127.0.0.1:9/ws")
    page.click("button:has-text('Create provider')")
    password = page.inner_text("#provider-password")
    assert len(password) >= 12
    page.goto(f"{server['base']}/providers")
    assert "Fibre Co" in page.content() and password not in page.content()
