"""Automated e-mail rules: managed over REST, applied in order (first match wins) before
SOAP by e-mail and tags."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.adapters.mail_conditions import RegexGuard
from engine.services import admin, queries
from tests.integration.test_mail_support import (
    all_exchanges,
    deliver,
    inbound,
    new_task,
    reply,
    task,
)

ALERT = (Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "nagios_alert.eml")


@pytest.fixture
def api(app, admin_token):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {admin_token}"}

    def call(method, path, json=None):
        return client.open(f"/api/v1{path}", method=method, headers=headers, json=json)
    return call


def alert_rule(**changes) -> dict:
    rule = {"name": "Nagios problems", "action": "detect", "group": "Desk",
            "account": "ACME Retail",
            "conditions": [{"field": "from", "match": "contains", "value": "NAGIOS@monitoring"},
                           {"field": "subject", "match": "regex",
                            "value": r"^\*\* PROBLEM .* is (CRITICAL|DOWN)"}]}
    return {**rule, **changes}


def test_rules_are_created_listed_reordered_replaced_and_deleted(api, seeded):
    first = api("POST", "/mail-rules", alert_rule())
    second = api("POST", "/mail-rules", {"name": "Ignore newsletters", "action": "skip",
                                         "conditions": [{"field": "subject",
                                                         "value": "newsletter"}]})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["position"] == 1 and second.json["position"] == 2
    assert second.json["conditions"][0]["match"] == "contains"

    moved = api("PUT", f"/mail-rules/{second.json['id']}",
                {**{k: second.json[k] for k in ("name", "action", "conditions")}, "position": 1})
    assert moved.status_code == 200
    assert [r["name"] for r in api("GET", "/mail-rules").json] == \
        ["Ignore newsletters", "Nagios problems"]

    assert api("DELETE", f"/mail-rules/{second.json['id']}").status_code == 204
    [left] = api("GET", "/mail-rules").json
    assert (left["name"], left["position"], left["group"]) == ("Nagios problems", 1, "Desk")
    assert api("GET", f"/mail-rules/{second.json['id']}").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    (alert_rule(conditions=[{"field": "subject", "match": "regex", "value": "(unclosed"}]),
     "conditions[0]"),
    (alert_rule(group=None), "action"),
    (alert_rule(group="No Such Group"), "group"),
    (alert_rule(action="assign_account", group=None, account=None), "account"),
    (alert_rule(conditions=[]), "conditions"),
    (alert_rule(conditions=[{"field": "cc", "value": "x"}]), "conditions"),
])
def test_invalid_rules_are_refused_with_the_field(api, seeded, body, field):
    response = api("POST", "/mail-rules", body)
    assert response.status_code == 422
    assert response.json["error"]["field"].startswith(field)


def test_rules_need_an_integration_manager(app, core, seeded):
    core.run(admin.create_user, "ann", "agent-password", "agent")
    token = core.run(admin.create_token, "ann")
    client = app.test_client()
    assert client.get("/api/v1/mail-rules").status_code == 401
    assert client.get("/api/v1/mail-rules",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_an_alert_matching_a_rule_opens_a_ticket_and_a_task(api, core, seeded):
    api("POST", "/mail-rules", alert_rule())
    outcome = deliver(core, ALERT.read_bytes())

    assert outcome["status"] == "applied", outcome
    opened = task(core, outcome["task_id"])
    assert opened["title"] == "** PROBLEM Service Alert: core-sw-01/PING is CRITICAL **"
    assert "Packet loss = 100%" in opened["description"]
    assert (opened["group"], opened["customer"]) == ("Desk", "ACME Retail")
    again = deliver(core, ALERT.read_bytes())  # the monitoring tool resends: one ticket
    assert (again["id"], again["repeats"]) == (outcome["id"], 1)
    assert core.run(queries.list_tasks, None, None, "core-sw-01")["total"] == 1


def test_the_first_matching_rule_wins_in_order(api, core, seeded):
    api("POST", "/mail-rules", alert_rule())
    skip = api("POST", "/mail-rules", {"name": "Mute core-sw-01", "action": "skip",
                                       "conditions": [{"field": "body", "value": "core-sw-01"}],
                                       "position": 1}).json
    muted = deliver(core, ALERT.read_bytes())
    assert muted["status"] == "skipped" and "Mute core-sw-01" in muted["outcome"]
    assert muted["rule_id"] == skip["id"]
    assert core.run(queries.list_tasks, None, None, "core-sw-01")["total"] == 0
    assert all_exchanges(core) == []  # skipped mail is recorded on the mail log only

    api("DELETE", f"/mail-rules/{skip['id']}")
    resent = ALERT.read_bytes().replace(b"20261123031407.12345", b"20261123031407.99999")
    assert deliver(core, resent)["status"] == "applied"


def test_a_disabled_rule_is_ignored(api, core, seeded):
    api("POST", "/mail-rules", alert_rule(enabled=False))
    assert deliver(core, ALERT.read_bytes())["status"] == "rejected"  # names no task


def test_assign_account_sets_the_customer_and_the_reply_is_still_applied(api, core, seeded):
    created = new_task(core, seeded)
    api("POST", "/mail-rules", {"name": "Carrier is ACME's line", "action": "assign_account",
                                "account": "ACME Wholesale",
                                "conditions": [{"field": "from", "value": "@carrier.example"}]})
    outcome = deliver(core, reply(created["id"], "ExternalReference: AC-1"))

    assert outcome["status"] == "applied"
    after = task(core, created["id"])
    assert (after["external_reference"], after["customer"]) == ("AC-1", "ACME Wholesale")


def test_detect_as_provider_reply_accepts_its_ticketing_systems_notices(api, core, seeded):
    created = new_task(core, seeded)
    api("POST", "/mail-rules", {"name": "Carrier's ServiceNow", "action": "detect",
                                "provider": "Carrier",
                                "conditions": [{"field": "from",
                                                "value": "servicenow@carrier-it.example"}]})
    notice = reply(created["id"], "Incident INC-9 created.\nExternalReference: INC-9",
                   sender="servicenow@carrier-it.example", Auto_Submitted="auto-generated",
                   Precedence="bulk")
    assert deliver(core, notice)["status"] == "applied"
    assert task(core, created["id"])["external_reference"] == "INC-9"
    forged = reply(created["id"], "ExternalReference: EVIL", token="f" * 32,
                   sender="servicenow@carrier-it.example", message_id="<f@x.example>")
    assert deliver(core, forged)["status"] == "rejected"  # a rule does not replace the token
    assert inbound(core, created["id"]) == [("Acknowledgement", "email", "delivered"),
                                            ("Acknowledgement", "email", "rejected")]


def test_a_runaway_regular_expression_is_cut_off_and_the_mail_still_processed(api, core,
                                                                              seeded):
    created = new_task(core, seeded)
    api("POST", "/mail-rules", {"name": "Backtracking", "action": "skip",
                                "conditions": [{"field": "body", "match": "regex",
                                                "value": r"^(\w+\s?)*$"}]})
    started = time.monotonic()
    outcome = deliver(core, reply(created["id"], "word " * 40 + "!"))
    assert time.monotonic() - started < 20
    assert outcome["status"] == "applied"  # the rule counted as not matching


def test_the_regex_guard_answers_again_after_cutting_off_a_search():
    guard = RegexGuard(timeout=0.5)
    try:
        assert guard.search(r"(a+)+$", "a" * 40 + "b") is None
        assert guard.search(r"core-sw-\d+", "host CORE-SW-01 down") is True
        assert guard.search(r"^x$", "y") is False
    finally:
        guard.close()

