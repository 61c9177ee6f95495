"""Dry-run of a process version against a group's recorded history: what it would have sent,
which instances would fail or wait for ever; nothing sent, nothing stored."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.adapters import orm
from engine.exceptions import BpmnInvalid, InvalidInput
from engine.services import admin, dry_run, models, tasks
from engine.services.inbound import Inbound, acknowledge_external, reassign_external
from engine.services.models import BUNDLED_DIR
from tests.conftest import make_core, seed
from tests.fakes import FakeClock
from tests.support import liaison

ROOT = Path(__file__).resolve().parents[2]
V1 = (BUNDLED_DIR / "liaison_new_assignment.bpmn").read_bytes()
CARRIER = Inbound(provider="Carrier", channel="email")
# The bound version, changed: Update instead of Submit Request ...
SENDS_UPDATE = V1.replace(b'id="provider.submit_request"', b'id="provider.send_update"')
# ... waiting for a message nobody sends ...
WRONG_MESSAGE = V1.replace(b'name="ExternalAcknowledgement"', b'name="ProviderAck"')
# ... reminding the provider (an Update) when the escalation timer fires ...
REMINDS = V1.replace(b'id="task.add_note" resultVariable="escalation_result"',
                     b'id="provider.send_update" resultVariable="escalation_result"')
# ... and a script that never ends.
ENDLESS = V1.replace(b'escalate_after = "PT4H"</bpmn:script>',
                     b'escalate_after = "PT4H"\nwhile True:\n    pass</bpmn:script>')


def history(core, seeded) -> dict:
    """Two tasks of Carrier Group: one went all the way (acknowledged, updated, resolved,
    closed), one was just sent."""
    done = core.run(tasks.create_task, seeded["ticket"]["id"], "Line down", "",
                    group="Carrier Group")["id"]
    core.run(acknowledge_external, done, "C-1", CARRIER)
    core.run(tasks.add_update, done, "Any news?")
    core.run(reassign_external, done, solution="Card replaced", source=CARRIER)
    core.run(tasks.close_task, done, "Fixed")
    fresh = core.run(tasks.create_task, seeded["ticket"]["id"], "New router", "",
                     group="Carrier Group")["id"]
    return {"done": done, "fresh": fresh}


def counts(core) -> dict:
    with core.sessions() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (orm.Exchange, orm.OutboxItem, orm.ProcessInstance, orm.TaskNote,
                              orm.ProcessModel)}


def by_task(report: dict) -> dict:
    return {t["task_id"]: t for t in report["tasks"]}


def test_the_bound_version_replays_the_same_and_nothing_is_stored_or_sent(core, seeded,
                                                                          mailer):
    ids = history(core, seeded)
    before = counts(core)

    report = dry_run.run(core, V1, "liaison_new_assignment.bpmn", "Carrier Group", 10)

    assert counts(core) == before and mailer.sent == []
    assert report["ok"] and report["summary"] == {"same": 2, "different": 0,
                                                  "waits_forever": 0, "error": 0}
    done = by_task(report)[ids["done"]]
    assert [s["request_type"] for s in done["sent"]] == ["Submit Request", "Update", "Closed"]
    assert [s["request_type"] for s in done["would_send"]] == ["Submit Request", "Update",
                                                               "Closed"]
    assert [(i["event"], i["status"], i["recorded_status"]) for i in done["instances"]] == [
        ("new_assignment", "completed", "completed"), ("update_message", "completed",
                                                       "completed"),
        ("closure", "completed", "completed")]


def test_a_changed_request_type_is_reported(any_core):
    core = any_core
    ids = history(core, seed(core))

    report = dry_run.run(core, SENDS_UPDATE, "p.bpmn", "Carrier Group", 10)

    assert not report["ok"] and report["summary"]["different"] == 2
    fresh = by_task(report)[ids["fresh"]]
    assert fresh["outcome"] == "different" and fresh["differs"]
    assert [s["request_type"] for s in fresh["sent"]] == ["Submit Request"]
    assert [s["request_type"] for s in fresh["would_send"]] == ["Update"]


def test_an_instance_that_would_wait_for_ever_is_reported(core, seeded):
    ids = history(core, seeded)

    report = dry_run.run(core, WRONG_MESSAGE, "p.bpmn", "Carrier Group", 10)

    done = by_task(report)[ids["done"]]
    assert done["outcome"] == "waits_forever"
    [waiting] = [i for i in done["instances"] if i["event"] == "new_assignment"]
    assert waiting["ends"] == "waiting" and waiting["recorded_status"] == "completed"
    assert waiting["waits_forever"] == "waits for ProviderAck, which liaison never delivers"
    lines = dry_run.report_lines(report)
    assert "  new_assignment (liaison_new_assignment): waits for ProviderAck, which liaison " \
           "never delivers" in lines


def test_timers_run_on_the_simulated_clock(sqlite_url, tmp_path, mailer):
    clock = FakeClock()
    core = make_core(sqlite_url, tmp_path, mailer, clock)
    try:
        seeded = seed(core)
        task_id = core.run(tasks.create_task, seeded["ticket"]["id"], "Silent", "",
                           group="Carrier Group")["id"]
        clock.advance(hours=3)
        early = dry_run.run(core, REMINDS, "p.bpmn", "Carrier Group", 1)
        clock.advance(hours=2)  # the 4-hour escalation is due now
        late = dry_run.run(core, REMINDS, "p.bpmn", "Carrier Group", 1)
    finally:
        core.close()

    assert [s["request_type"] for s in early["tasks"][0]["would_send"]] == ["Submit Request"]
    assert [s["request_type"] for s in early["tasks"][0]["would_send_later"]] == ["Update"]
    [submit, reminder] = late["tasks"][0]["would_send"]
    assert late["tasks"][0]["task_id"] == task_id and reminder["request_type"] == "Update"
    after = datetime.fromisoformat(reminder["at"]) - datetime.fromisoformat(submit["at"])
    assert abs(after.total_seconds() - 4 * 3600) < 5  # when its timer was due, not now


def test_a_runaway_script_ends_in_error_within_the_sandbox_limits(core, seeded):
    history(core, seeded)

    report = dry_run.run(core, ENDLESS, "p.bpmn", "Carrier Group", 1)

    [task] = report["tasks"]
    [instance] = task["instances"]
    assert task["outcome"] == "error" and instance["ends"] == "error"
    assert "longer than" in instance["error"]


def test_bad_requests_are_refused_clearly(core, seeded):
    broken = V1.replace(b"</bpmn:serviceTask>", b"</bpmn:serviceTsak>", 1)
    with pytest.raises(BpmnInvalid) as invalid:
        dry_run.run(core, broken, "p.bpmn", "Carrier Group")
    assert invalid.value.errors[0]["line"]
    with pytest.raises(InvalidInput) as local:
        dry_run.run(core, V1, "p.bpmn", "Desk")
    assert local.value.field == "group"
    other = V1.replace(b'id="liaison_new_assignment" name=', b'id="carrier_intake" name=')
    with pytest.raises(InvalidInput) as unbound:
        dry_run.run(core, other, "p.bpmn", "Carrier Group")
    assert unbound.value.field == "event"
    assert dry_run.run(core, other, "p.bpmn", "Carrier Group", event="new_assignment")["ok"]


def test_a_group_with_no_history_gives_an_empty_report_that_says_so(core, seeded):
    core.run(admin.create_group, "Quiet", integrated=True, provider="Carrier")

    report = dry_run.run(core, V1, "p.bpmn", "Quiet")

    assert report["tasks"] == [] and report["ok"]
    assert report["message"] == "group Quiet has no recorded tasks to replay: nothing to compare"


def test_rest_dry_run_of_a_deployed_version(core, client, admin_token, seeded):
    auth = {"Authorization": f"Bearer {admin_token}"}
    history(core, seeded)
    v2 = core.run(models.deploy_process_model, SENDS_UPDATE, "liaison_new_assignment.bpmn")

    response = client.post(f"/api/v1/process-models/{v2['id']}/dry-run", headers=auth,
                           json={"group": "Carrier Group", "tasks": 5})

    assert response.status_code == 200
    assert (response.json["version"], response.json["summary"]["different"]) == (2, 2)
    bad = client.post(f"/api/v1/process-models/{v2['id']}/dry-run", headers=auth,
                      json={"group": "Carrier Group", "tasks": 0})
    assert bad.status_code == 422 and bad.json["error"]["field"] == "tasks"
    missing = client.post("/api/v1/process-models/999/dry-run", headers=auth,
                          json={"group": "Carrier Group"})
    assert missing.status_code == 404


def test_web_dry_run_report(core, client, seeded):
    from tests.integration.test_web_pages import PASSWORDS, WebClient, as_user
    core.run(admin.create_user, "dora", PASSWORDS["dora"], "designer")
    history(core, seeded)
    v2 = core.run(models.deploy_process_model, WRONG_MESSAGE, "liaison_new_assignment.bpmn")
    web = as_user(WebClient(client), "dora")
    page = f"/process-models/{v2['id']}/dry-run"
    assert "Dry-run against history" in web.get(f"/process-models/{v2['id']}").get_data(True)

    html = web.post(page, {"group": "Carrier Group", "tasks": "5"}).get_data(as_text=True)

    assert 'id="dry-run-report"' in html
    assert "waits for ProviderAck, which liaison never delivers" in html


def test_cli_dry_run_exit_status_and_one_line_errors(tmp_path, mailer):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    core = make_core(url, tmp_path, mailer)
    try:
        history(core, seed(core))
    finally:
        core.close()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "instance"),
           "LIAISON_DATABASE_URL": url, "LIAISON_SECRET_KEY": "test-secret-key"}

    def run(*args):
        return subprocess.run(liaison(*args), capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)
    same, changed, broken = (tmp_path / "same.bpmn", tmp_path / "changed.bpmn",
                             tmp_path / "broken.bpmn")
    same.write_bytes(V1)
    changed.write_bytes(SENDS_UPDATE)
    broken.write_bytes(V1.replace(b"</bpmn:serviceTask>", b"</bpmn:serviceTsak>", 1))

    ok = run("dry-run", str(same), "--group", "Carrier Group")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == "2 same, 0 different, 0 waiting for ever, 0 in error"
    differs = run("dry-run", str(changed), "--group", "Carrier Group")
    assert differs.returncode == 1
    assert "would send Update" in differs.stdout
    invalid = run("dry-run", str(broken), "--group", "Nope")
    assert invalid.returncode == 1 and invalid.stderr.startswith("liaison: error: invalid BPMN")
    assert len(invalid.stderr.strip().splitlines()) == 1 and "Traceback" not in invalid.stderr
    nogroup = run("dry-run", str(same), "--group", "Nope")
    assert nogroup.returncode == 1
    assert nogroup.stderr.strip() == "liaison: error: group 'Nope' not found"


def test_openapi_lists_the_new_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/process-models/{id}/dry-run", "/process-models/{id}/migration",
                 "/providers/{id}/sla-targets", "/sla/figures", "/groups/{name}/members"):
        assert path in paths, path
