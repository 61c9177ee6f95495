"""Provider replies by e-mail, as clients write them, applied through the worker's step; and
every safety case of issue 6 recorded as a rejected In exchange with its reason."""

from __future__ import annotations

import threading
from email.message import EmailMessage

import pytest

from engine.services import admin, mail, mail_intake, mail_outcome, queries, tasks
from engine.worker import Worker
from tests.conftest import seed
from tests.integration.test_mail_support import (
    all_exchanges,
    deliver,
    fixture_mail,
    inbound,
    new_task,
    reply,
    task,
)


def rejected(core, task_id=None) -> list[dict]:
    rows = all_exchanges(core) if task_id is None else \
        core.run(queries.exchanges_of_task, task_id)
    return [e for e in rows if e["status"] == "rejected"]


# -- replies from real clients' shapes ------------------------------------------------------

def test_outlook_html_reply_with_a_reference_acknowledges_the_task(core, seeded):
    created = new_task(core, seeded)
    outcome = deliver(core, fixture_mail("outlook_html_acknowledgement.eml", created["id"]))

    assert outcome["status"] == "applied", outcome
    assert task(core, created["id"])["external_reference"] == "INC0012345"
    assert inbound(core, created["id"]) == [("Acknowledgement", "email", "delivered")]
    instances = core.run(queries.instances_of_task, created["id"])
    assert instances[0]["status"] == "completed"  # the bundled process stopped waiting


def test_gmail_reply_with_action_update_adds_the_text_above_the_quote(core, seeded):
    created = new_task(core, seeded)
    outcome = deliver(core, fixture_mail("gmail_quoted_update.eml", created["id"]))

    assert outcome["status"] == "applied", outcome
    assert inbound(core, created["id"]) == [("Update", "email", "delivered")]
    page = core.run(queries.task_page, created["id"])
    texts = [n["text"] for n in page["notes"] if n["kind"] == "external_update"]
    assert texts == ["Engineer dispatched, ETA 14:00. Grüße aus München."]


def test_apple_mail_resolve_returns_the_task_with_its_solution(core, seeded):
    created = new_task(core, seeded)
    outcome = deliver(core, fixture_mail("apple_mail_resolve.eml", created["id"]))

    assert outcome["status"] == "applied", outcome
    after = task(core, created["id"])
    assert after["solution"] == "Line card replaced, the link is stable since 15:05 – see the photo."
    assert after["external_reference"] == "INC0012345"
    assert ("Reassigned", "email", "delivered") in inbound(core, created["id"])


def test_a_plain_reply_without_an_action_is_an_update(core, seeded):
    created = new_task(core, seeded)
    deliver(core, reply(created["id"], "We are looking into it."))
    assert inbound(core, created["id"]) == [("Update", "email", "delivered")]


def test_labels_configured_for_a_provider_are_understood(core, seeded):
    core.run(admin.create_provider, "Telco", "email", email="desk@telco.example",
             tag_labels={"task_id": "Ticket-Ref", "external_reference": "Their-Ref",
                         "token": "Signature"})
    core.run(admin.create_group, "Telco Group", integrated=True, provider="Telco")
    created = new_task(core, seeded, group="Telco Group")
    from engine.domain.credentials import task_token
    body = (f"Opened on our side.\n\nTHEIR-REF: T-77\n\n> ticket-ref: {created['id']}\n"
            f"> signature: {task_token('test-secret-key', created['id'])}\n")
    raw = (f"From: desk@telco.example\r\nTo: liaison@liaison.local\r\nSubject: Re: x\r\n"
           f"Message-ID: <t-1@telco.example>\r\n\r\n{body}").encode()

    assert deliver(core, raw)["status"] == "applied"
    assert task(core, created["id"])["external_reference"] == "T-77"


def test_the_same_message_id_twice_is_stored_once_and_applied_once(core, seeded):
    created = new_task(core, seeded)
    raw = reply(created["id"], "Engineer on site", message_id="<same@carrier.example>")
    first, second = deliver(core, raw), deliver(core, raw)

    assert first["id"] == second["id"] and second["status"] == "applied"
    assert second["repeats"] == 1 and second["last_seen_at"] is not None
    assert inbound(core, created["id"]) == [("Update", "email", "delivered")]


def test_the_same_message_id_from_another_sender_is_kept_but_not_applied_again(core, seeded):
    created = new_task(core, seeded)
    raw = reply(created["id"], "Engineer on site", message_id="<same@carrier.example>")
    forged = raw.replace(b"From: noc@carrier.example", b"From: other@carrier.example")
    first, second = deliver(core, raw), deliver(core, forged)

    assert first["id"] != second["id"]  # not the same mail: stored, and shown in the log
    assert (first["status"], second["status"]) == ("applied", "duplicate")
    assert inbound(core, created["id"]) == [("Update", "email", "delivered")]


def test_the_worker_processes_stored_mail(core, seeded):
    created = new_task(core, seeded)
    inbox_id = core.run(mail_intake.receive, reply(created["id"], "ExternalReference: W-1"), "smtp",
                        "noc@carrier.example")
    Worker(core).run_once()
    assert core.run(mail_outcome.message_view, inbox_id)["status"] == "applied"
    assert task(core, created["id"])["external_reference"] == "W-1"


# -- safety: not applied, recorded as rejected with the reason --------------------------------

def test_a_reply_without_token_is_rejected_on_the_task(core, seeded):
    created = new_task(core, seeded)
    outcome = deliver(core, reply(created["id"], "ExternalReference: X-1", token=""))

    assert outcome["status"] == "rejected" and "missing Token" in outcome["outcome"]
    assert task(core, created["id"])["external_reference"] is None
    [record] = rejected(core, created["id"])
    assert (record["direction"], record["channel"], record["request_type"]) == \
        ("In", "email", "Acknowledgement")
    assert "missing Token" in record["error"]


def test_a_forged_token_is_rejected(core, seeded):
    created = new_task(core, seeded)
    other = new_task(core, seeded, title="other")
    from engine.domain.credentials import task_token
    stolen = task_token("test-secret-key", other["id"])  # valid, but for another task
    for token in ("0" * 32, stolen, stolen.upper() + "x"):
        deliver(core, reply(created["id"], f"ExternalReference: F-{token[:3]}", token=token))

    assert task(core, created["id"])["external_reference"] is None
    reasons = [e["error"] for e in rejected(core, created["id"])]
    assert len(reasons) == 3 and all("does not match" in r for r in reasons)


def test_a_trusted_sender_needs_no_token_but_only_from_its_own_address(core, seeded):
    core.run(admin.create_provider, "Trusty", "email", email="ops@trusty.example",
             trust_sender=True)
    core.run(admin.create_group, "Trusty Group", integrated=True, provider="Trusty")
    created = new_task(core, seeded, group="Trusty Group")

    impostor = deliver(core, reply(created["id"], "ExternalReference: BAD", token="",
                                   sender="someone@elsewhere.example"))
    genuine = deliver(core, reply(created["id"], "ExternalReference: OK-1", token="",
                                  sender="OPS@trusty.example"))
    assert (impostor["status"], genuine["status"]) == ("rejected", "applied")
    assert task(core, created["id"])["external_reference"] == "OK-1"


@pytest.mark.parametrize(("headers", "envelope", "reason"), [
    ({"Auto_Submitted": "auto-replied"}, None, "Auto-Submitted"),
    ({"Precedence": "bulk"}, None, "Precedence: bulk"),
    ({"Precedence": "junk"}, None, "Precedence: junk"),
    ({"Precedence": "list"}, None, "Precedence: list"),
    ({"X_Autoreply": "yes"}, None, "X-Autoreply"),
    ({}, "<>", "null return path"),
    ({"Return_Path": "<MAILER-DAEMON@carrier.example>"}, None, "mailer-daemon"),
])
def test_auto_replies_are_rejected_even_with_a_valid_token(core, seeded, mailer, headers,
                                                          envelope, reason):
    created = new_task(core, seeded)
    Worker(core).run_once()
    sent_before = len(mailer.sent)
    outcome = deliver(core, reply(created["id"], "I am out of office until Monday.", **headers),
                      envelope_from=envelope)

    assert outcome["status"] == "rejected" and reason.lower() in outcome["outcome"].lower()
    assert inbound(core, created["id"]) == [("Update", "email", "rejected")]
    Worker(core).run_once()
    assert len(mailer.sent) == sent_before  # nothing answers an auto-reply


def test_mail_from_our_own_address_is_rejected(core, seeded):
    created = new_task(core, seeded)
    outcome = deliver(core, reply(created["id"], "ExternalReference: LOOP",
                                  sender="liaison@liaison.local"))
    assert outcome["status"] == "rejected" and "our own address" in outcome["outcome"]
    assert task(core, created["id"])["external_reference"] is None
    assert len(rejected(core)) == 1


def test_a_mail_loop_is_stopped_by_the_per_sender_rate_limit(core, seeded):
    core.settings = core.settings.with_overrides(extra={"LIAISON_MAIL_RATE_LIMIT": "3/600"})
    created = new_task(core, seeded)
    outcomes = [deliver(core, reply(created["id"], f"note {n}"))["status"] for n in range(5)]

    assert outcomes == ["applied"] * 3 + ["rejected"] * 2
    assert [e for e in rejected(core, created["id"]) if "rate limit" in e["error"]]


def test_mail_naming_no_or_an_unknown_task_goes_to_the_global_log(core, seeded):
    nothing = deliver(core, b"From: a@b.example\r\nSubject: hello\r\n\r\nHi there\r\n")
    unknown = deliver(core, reply(999, "ExternalReference: R"))

    assert nothing["status"] == unknown["status"] == "rejected"
    assert "names no task" in nothing["outcome"] and "TaskNotFound" in unknown["outcome"]
    assert [e["task_id"] for e in rejected(core)] == [None, None]


def test_a_closed_task_or_another_reference_is_refused_and_nothing_changes(core, seeded):
    created = new_task(core, seeded)
    deliver(core, reply(created["id"], "ExternalReference: FIRST"))
    mismatch = deliver(core, reply(created["id"], "ExternalReference: SECOND\nAction: Update"))
    core.run(tasks.close_task, created["id"], "done")
    closed = deliver(core, reply(created["id"], "late news"))

    assert "ReferenceMismatch" in mismatch["outcome"] and "TaskClosed" in closed["outcome"]
    assert task(core, created["id"])["external_reference"] == "FIRST"
    assert len(rejected(core, created["id"])) == 2


# -- on every database: racing workers, and a failure of ours ---------------------------------

@pytest.fixture
def every_db(any_core):
    return any_core, seed(any_core)


def test_racing_workers_apply_a_mail_received_three_times_once(every_db):
    core, seeded = every_db
    created = new_task(core, seeded)
    raw = reply(created["id"], "ExternalReference: RACE-1", message_id="<race@carrier.example>")
    for source in ("smtp", "smtp", "imap"):  # a sender retrying, and the same mail by IMAP
        core.run(mail_intake.receive, raw, source)
    workers = [threading.Thread(target=mail.process_inbox, args=(core,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    [stored] = core.run(mail_outcome.list_messages)
    assert (stored["status"], stored["repeats"]) == ("applied", 2)
    assert inbound(core, created["id"]) == [("Acknowledgement", "email", "delivered")]
    assert task(core, created["id"])["external_reference"] == "RACE-1"


class BrokenSoapService:
    def answer(self, body: bytes, content_type: str):
        raise RuntimeError("the SOAP service crashed")


def test_a_failure_of_ours_is_retried_then_set_aside_without_blocking_other_mail(core, seeded):
    core.soap_mail_endpoint = BrokenSoapService()
    soap = EmailMessage()
    soap["From"], soap["Subject"] = "erp@carrier.example", "SOAP"
    soap.set_content(b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                     b"<s:Body/></s:Envelope>", maintype="text", subtype="xml")
    created = new_task(core, seeded)
    poison = core.run(mail_intake.receive, bytes(soap), "smtp")
    good = core.run(mail_intake.receive, reply(created["id"], "ExternalReference: FINE"), "smtp")

    for _ in range(mail.MAX_ATTEMPTS):
        mail.process_inbox(core)
    assert core.run(mail_outcome.message_view, good)["status"] == "applied"
    failed = core.run(mail_outcome.message_view, poison)
    assert (failed["status"], failed["attempts"]) == ("failed", mail.MAX_ATTEMPTS)
    assert "the SOAP service crashed" in failed["outcome"]
