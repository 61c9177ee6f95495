"""Moving waiting instances to a new version of their process: preview, migrate, skipped ones."""

from __future__ import annotations

import pytest

from engine.services import migration, models, queries, tasks
from engine.services.inbound import Inbound, acknowledge_external
from engine.services.models import BUNDLED_DIR

V1 = (BUNDLED_DIR / "liaison_new_assignment.bpmn").read_bytes()
THANK = b"""<bpmn:serviceTask id="thank_provider" name="Thank the provider">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="task.add_note" resultVariable="thanks">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="text" type="str"
              value="&quot;Acknowledged as &quot; + ack['external_reference'] + &quot; (v2)&quot;" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>flow_wait_done</bpmn:incoming>
      <bpmn:outgoing>flow_thanked</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="flow_thanked" sourceRef="thank_provider" targetRef="acknowledged" />
    <bpmn:endEvent id="acknowledged" name="Acknowledged">
      <bpmn:incoming>flow_thanked</bpmn:incoming>"""


def version_2() -> bytes:
    """v1 plus a step after the acknowledgement that thanks the provider in the history."""
    data = V1.replace(b'sourceRef="wait_acknowledgement" targetRef="acknowledged"',
                      b'sourceRef="wait_acknowledgement" targetRef="thank_provider"')
    data = data.replace(b"""<bpmn:endEvent id="acknowledged" name="Acknowledged">
      <bpmn:incoming>flow_wait_done</bpmn:incoming>""", THANK)
    assert data.count(b"thank_provider") == 3
    return data


def deploy(core, data: bytes) -> dict:
    return core.run(models.deploy_process_model, data, "liaison_new_assignment.bpmn", "dora")


def waiting_task(core, seeded, title="Router dead") -> tuple[int, dict]:
    task = core.run(tasks.create_task, seeded["ticket"]["id"], title, "", group="Carrier Group")
    [instance] = core.run(queries.instances_of_task, task["id"])
    return task["id"], instance


def test_preview_then_migrate_moves_waiting_instances_keeping_their_timer(core, seeded):
    task_id, before = waiting_task(core, seeded)
    v2 = deploy(core, version_2())

    preview = core.run(migration.preview, v2["id"])
    assert preview["migratable"] == [{"instance_id": before["id"], "task_id": task_id,
                                      "from_version": 1, "waiting_at": [
                                          "no_acknowledgement", "wait_acknowledgement"]}]
    assert preview["skipped"] == []
    assert core.run(queries.instance_detail, before["id"])["model_id"] == before["model_id"]

    result = core.run(migration.migrate, v2["id"], actor="dora")

    assert [m["instance_id"] for m in result["migrated"]] == [before["id"]]
    after = core.run(queries.instance_detail, before["id"])
    assert after["model_id"] == v2["id"] and after["status"] == "waiting"
    assert after["next_timer_at"] == before["next_timer_at"]  # the escalation stays due as it was
    core.run(acknowledge_external, task_id, "C-77", Inbound(provider="Carrier"))
    notes = [n["text"] for n in core.run(queries.task_page, task_id)["notes"]]
    assert "Acknowledged as C-77 (v2)" in notes
    assert any("moved from version 1 to version 2" in n for n in notes)
    assert core.run(queries.instance_detail, before["id"])["status"] == "completed"
    assert core.run(migration.preview, v2["id"])["migratable"] == []


def test_instances_waiting_at_an_element_the_new_version_lacks_are_skipped(core, seeded):
    task_id, before = waiting_task(core, seeded)
    renamed = deploy(core, V1.replace(b"wait_acknowledgement", b"wait_for_ack"))

    result = core.run(migration.migrate, renamed["id"], actor="dora")

    assert result["migrated"] == []
    [skipped] = result["skipped"]
    assert skipped["instance_id"] == before["id"]
    assert skipped["reason"] == ("it waits at wait_acknowledgement, which the new version "
                                 "lacks")
    assert core.run(queries.instance_detail, before["id"])["model_id"] == before["model_id"]
    core.run(acknowledge_external, task_id, "C-78", Inbound(provider="Carrier"))
    assert core.run(queries.instance_detail, before["id"])["status"] == "completed"


def test_migration_is_limited_to_a_group_and_to_the_listed_instances(any_core):
    from engine.services import admin
    from tests.conftest import seed
    core = any_core
    seeded = seed(core)
    core.run(admin.create_group, "Second", integrated=True, provider="Carrier")
    _, mine = waiting_task(core, seeded)
    other = core.run(tasks.create_task, seeded["ticket"]["id"], "Other", "", group="Second")
    [theirs] = core.run(queries.instances_of_task, other["id"])
    v2 = deploy(core, version_2())

    preview = core.run(migration.preview, v2["id"], "Second")
    assert [m["instance_id"] for m in preview["migratable"]] == [theirs["id"]]
    result = core.run(migration.migrate, v2["id"], "Carrier Group", [mine["id"], theirs["id"]])
    assert [m["instance_id"] for m in result["migrated"]] == [mine["id"]]
    assert result["skipped"] == [{"instance_id": theirs["id"], "reason": (
        "not a waiting instance of another version of this process for group Carrier Group")}]


def test_rest_preview_and_migrate(core, client, admin_token, seeded):
    auth = {"Authorization": f"Bearer {admin_token}"}
    _, before = waiting_task(core, seeded)
    v2 = deploy(core, version_2())
    url = f"/api/v1/process-models/{v2['id']}/migration"

    preview = client.get(url, headers=auth)
    assert preview.status_code == 200
    assert [m["instance_id"] for m in preview.json["migratable"]] == [before["id"]]
    migrated = client.post(url, headers=auth, json={"instances": [before["id"]]})
    assert migrated.status_code == 200 and len(migrated.json["migrated"]) == 1
    assert client.post(url, headers=auth, json={"instances": "all"}).status_code == 422
    assert client.get("/api/v1/process-models/999/migration", headers=auth).status_code == 404
    assert client.get(url + "?group=Nope", headers=auth).status_code == 404


@pytest.mark.parametrize("group", [None, "Carrier Group"])
def test_nothing_to_migrate_on_the_latest_version_itself(core, seeded, group):
    _, before = waiting_task(core, seeded)
    assert core.run(migration.preview, before["model_id"], group)["migratable"] == []


def test_the_model_page_button_previews_then_migrates(core, client, seeded):
    from engine.services import admin
    from tests.integration.test_web_pages import PASSWORDS, WebClient, as_user
    core.run(admin.create_user, "dora", PASSWORDS["dora"], "designer")
    _, before = waiting_task(core, seeded)
    v2 = deploy(core, version_2())
    web = as_user(WebClient(client), "dora")
    assert 'id="migrate-link"' in web.get(f"/process-models/{v2['id']}").get_data(as_text=True)

    page = f"/process-models/{v2['id']}/migration"
    preview = web.get(page).get_data(as_text=True)
    assert f"#{before['id']}" in preview and "Migrate 1 instance(s) to version 2" in preview
    done = web.post(page, {"group": ""}).get_data(as_text=True)

    assert "1 instance(s) moved to version 2; 0 skipped." in done
    assert core.run(queries.instance_detail, before["id"])["model_id"] == v2["id"]
