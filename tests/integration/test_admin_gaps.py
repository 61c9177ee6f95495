"""What a new operator missed: provider addresses on the web, passwords, the exchange log's
total and CSV, group membership by REST and CLI, and SLA targets and figures by REST."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import pytest

from engine.services import admin, queries, tasks
from tests.conftest import make_core
from tests.integration.test_web_pages import WebClient, as_user, people, text_of
from tests.support import liaison

__all__ = ["people"]  # the fixture, shared with test_web_pages
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def web(client):
    return WebClient(client)


@pytest.fixture
def auth(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


# -- provider addresses --------------------------------------------------------------------

def test_admin_edits_a_providers_addresses_on_the_web(core, web, people):
    provider_id = people["provider"]["id"]
    as_user(web, "boss")
    page = f"/providers/{provider_id}/edit"
    assert 'value="noc@carrier.example"' in text_of(web.get(page))

    saved = web.post(page, {"channel": "soap", "endpoint_url": "https://carrier.example/ws",
                            "email": "", "label_task_id": "Ticket"})
    assert saved.status_code == 302
    [provider] = core.run(queries.list_providers)
    assert (provider["channel"], provider["endpoint_url"], provider["email"],
            provider["tag_labels"]) == ("soap", "https://carrier.example/ws", None,
                                        {"task_id": "Ticket"})

    refused = web.post(page, {"channel": "soap", "endpoint_url": "not a url"})
    assert refused.status_code == 302
    assert "endpoint url" in text_of(web.get(page)).lower()
    assert core.run(queries.list_providers)[0]["endpoint_url"] == "https://carrier.example/ws"


def test_an_agent_may_not_edit_providers(web, people):
    as_user(web, "alice")
    assert web.get(f"/providers/{people['provider']['id']}/edit").status_code == 403


# -- passwords ----------------------------------------------------------------------------

def test_a_user_changes_their_own_password(web, people):
    as_user(web, "alice")
    wrong = web.post("/account/password", {"current_password": "nope", "new_password":
                                           "a-new-secret", "repeat_password": "a-new-secret"})
    assert wrong.status_code == 302
    assert "current password is not right" in text_of(web.get("/account/password"))
    short = web.post("/account/password", {"current_password": "alice-password",
                                           "new_password": "short", "repeat_password": "short"})
    assert short.status_code == 302
    assert "at least 8 characters" in text_of(web.get("/account/password"))

    web.post("/account/password", {"current_password": "alice-password",
                                    "new_password": "a-new-secret",
                                    "repeat_password": "a-new-secret"})
    web.post("/logout", page="/tasks")
    assert web.login("alice", "alice-password").status_code == 401
    assert web.login("alice", "a-new-secret").status_code == 302


def test_an_admin_resets_another_users_password_and_ends_a_lock_out(web, people):
    for _ in range(5):
        web.login("alice", "wrong-password")
    as_user(web, "boss")
    assert "locked" in text_of(web.get("/users"))
    web.post("/users/alice/password", {"new_password": "reset-by-boss",
                                       "repeat_password": "reset-by-boss"}, page="/users")
    web.post("/logout", page="/users")
    assert web.login("alice", "reset-by-boss").status_code == 302


def test_only_an_admin_resets_passwords(web, people):
    as_user(web, "ivan")
    refused = web.post("/users/alice/password", {"new_password": "x" * 10,
                                                 "repeat_password": "x" * 10},
                       page="/account/password")
    assert refused.status_code == 403


# -- the exchange log ------------------------------------------------------------------------

def test_the_exchange_log_shows_its_total_and_exports_what_is_filtered(core, web, people):
    ticket = people["ticket"]["id"]
    task_ids = [core.run(tasks.create_task, ticket, f"Task {n}", "", group="Carrier Group")["id"]
                for n in range(3)]
    core.run(tasks.add_update, task_ids[0], "=HYPERLINK(\"http://evil.example\")")
    as_user(web, "ivan")

    page = text_of(web.get("/exchanges?request_type=Submit+Request"))
    assert '<strong id="exchange-total">3</strong>' in page
    export = web.get("/exchanges/export.csv?request_type=Submit+Request")
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text_of(export))))
    assert sorted(int(r["task_id"]) for r in rows) == task_ids
    assert {r["request_type"] for r in rows} == {"Submit Request"}

    everything = list(csv.DictReader(io.StringIO(text_of(web.get("/exchanges/export.csv")))))
    assert len(everything) == 4
    assert '<strong id="exchange-total">4</strong>' in text_of(web.get("/exchanges"))


def test_rest_exports_exchanges_as_csv(core, client, auth, seeded):
    core.run(tasks.create_task, seeded["ticket"]["id"], "One", "", group="Carrier Group")
    response = client.get("/api/v1/exchanges.csv?direction=Out", headers=auth)
    rows = list(csv.DictReader(io.StringIO(text_of(response))))
    assert [(r["request_type"], r["provider"]) for r in rows] == [("Submit Request", "Carrier")]


# -- group membership -----------------------------------------------------------------------

def test_group_members_by_rest(core, client, auth, seeded):
    for name in ("ann", "bob"):
        core.run(admin.create_user, name, f"{name}-password", "agent")
    url = "/api/v1/groups/Carrier%20Group/members"

    put = client.put(url, headers=auth, json={"users": ["bob", "ann"]})
    assert put.status_code == 200 and put.json == {"group": "Carrier Group",
                                                   "members": ["ann", "bob"]}
    assert client.get(url, headers=auth).json["members"] == ["ann", "bob"]

    unknown = client.put(url, headers=auth, json={"users": ["ann", "zed"]})
    assert unknown.status_code == 422 and unknown.json["error"]["field"] == "users"
    assert "zed" in unknown.json["error"]["message"]
    assert client.get(url, headers=auth).json["members"] == ["ann", "bob"]
    assert client.put(url, headers=auth, json={}).status_code == 422
    assert client.get("/api/v1/groups/Nope/members", headers=auth).status_code == 404

    emptied = client.put(url, headers=auth, json={"users": []})
    assert emptied.json["members"] == []


def test_group_members_by_cli(tmp_path, mailer):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    core = make_core(url, tmp_path, mailer)
    try:
        for name in ("ann", "bob"):
            core.run(admin.create_user, name, f"{name}-password", "agent")
        core.run(admin.create_group, "Desk")
    finally:
        core.close()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "instance"),
           "LIAISON_DATABASE_URL": url}

    def run(*args):
        return subprocess.run(liaison(*args), capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=120)
    assert run("set-members", "Desk", "ann").stdout.strip() == "group Desk: ann"
    added = run("add-member", "Desk", "bob")
    assert added.returncode == 0 and added.stdout.strip() == "group Desk: ann, bob"
    bad = run("add-member", "Desk", "zed")
    assert bad.returncode == 1 and bad.stderr.strip() == "liaison: error: unknown users: zed"
    assert run("set-members", "Desk").stdout.strip() == "group Desk: no members"


# -- SLA targets and figures by REST ----------------------------------------------------------

def test_sla_targets_by_rest_refuse_bad_values_naming_the_field(client, auth, seeded):
    url = f"/api/v1/providers/{seeded['provider']['id']}/sla-targets"
    good = client.put(url, headers=auth, json={"targets": [
        {"metric": "acknowledge", "minutes": 60},
        {"metric": "resolve", "priority": "high", "minutes": 240}]})
    assert good.status_code == 200
    assert good.json["targets"] == [{"metric": "acknowledge", "priority": None, "minutes": 60},
                                    {"metric": "resolve", "priority": "high", "minutes": 240}]

    for minutes, field in ((0, "targets[0].minutes"), (-30, "targets[0].minutes"),
                           (10**9, "targets[0].minutes"), ("60", "targets[0].minutes")):
        bad = client.put(url, headers=auth, json={"targets": [{"metric": "resolve",
                                                               "minutes": minutes}]})
        assert bad.status_code == 422, minutes
        assert bad.json["error"]["field"] == field
    assert client.put(url, headers=auth, json={"goals": []}).status_code == 422
    assert client.get(url, headers=auth).json == good.json
    assert client.get("/api/v1/providers/999/sla-targets", headers=auth).status_code == 404


def test_sla_figures_by_rest_and_csv_agree(core, client, auth, seeded):
    core.run(tasks.create_task, seeded["ticket"]["id"], "One", "", group="Carrier Group")
    client.put(f"/api/v1/providers/{seeded['provider']['id']}/sla-targets", headers=auth,
               json={"targets": [{"metric": "acknowledge", "minutes": 60}]})

    figures = client.get("/api/v1/sla/figures?weeks=2", headers=auth).json
    this_week = figures["rows"][-2]
    assert (this_week["provider"], this_week["metric"], this_week["count"],
            this_week["target_minutes"]) == ("Carrier", "acknowledge", 1, 60)
    exported = list(csv.DictReader(io.StringIO(text_of(
        client.get("/api/v1/sla/figures.csv?weeks=2", headers=auth)))))
    assert len(exported) == len(figures["rows"]) == 4
    assert exported[-2]["count"] == "1" and exported[-2]["week"] == this_week["week"]
    assert client.get("/api/v1/sla/figures?weeks=0", headers=auth).json["error"]["field"] == \
        "weeks"
    assert client.get("/api/v1/sla/figures?provider=Nope", headers=auth).status_code == 404


def test_sla_page_shows_charts_data_table_and_saves_targets(core, web, people):
    core.run(tasks.create_task, people["ticket"]["id"], "One", "", group="Carrier Group")
    as_user(web, "ivan")
    page = text_of(web.get("/sla"))
    assert 'id="sla-figures"' in page and "Carrier" in page
    saved = web.post(f"/sla/targets/{people['provider']['id']}",
                     {"acknowledge_any": "60", "resolve_high": "240"}, page="/sla")
    assert saved.status_code == 302
    assert 'value="240"' in text_of(web.get("/sla?provider=Carrier"))
    web.post(f"/sla/targets/{people['provider']['id']}", {"acknowledge_any": "0"}, page="/sla")
    assert "acknowledge (any priority): must be between 1 and 527,040 minutes" in text_of(web.get("/sla"))

