"""Issue 6's "done when", as a user does it: `liaison demo`, then `liaison serve` with
LIAISON_SMTP_LISTEN; a reply written by hand quoting the demo's outbound mail sets the
reference, a forged one is shown as rejected, and an alert matching a rule opens a ticket."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from engine.config import Settings
from engine.core import Core
from engine.services import mail_rules
from tests.conftest import free_port
from tests.support import liaison, wait_for

ROOT = Path(__file__).resolve().parents[2]
ALERT = ROOT / "tests" / "fixtures" / "mail" / "nagios_alert.eml"

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path):
    web, smtp = free_port(), free_port()
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "instance"),
           "LIAISON_DATABASE_URL": f"sqlite:///{tmp_path / 'instance' / 'demo.db'}",
           "LIAISON_SMTP_LISTEN": f"127.0.0.1:{smtp}", "LIAISON_PORT": str(web)}
    for name in ("LIAISON_SECRET_KEY", "LIAISON_OUTBOUND_SMTP", "LIAISON_IMAP_URL"):
        env.pop(name, None)
    for command in (["init-db"], ["demo"]):
        done = subprocess.run(liaison(*command), env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    server = subprocess.Popen(liaison("serve", "--port", str(web)), env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    creds = json.loads((tmp_path / "instance" / "demo-credentials.json").read_text())
    yield f"http://127.0.0.1:{web}", smtp, tmp_path / "instance", creds["api_token"], env
    server.terminate()
    server.wait(20)


def api(base: str, token: str, path: str):
    try:
        response = requests.get(f"{base}/api/v1{path}", timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
    except requests.ConnectionError:
        return None  # not serving yet
    return response.json() if response.ok else None


def hand_written_reply(outbound: EmailMessage, text: str) -> bytes:
    quoted = "\n".join(f"> {line}" for line in outbound.get_content().splitlines())
    answer = EmailMessage()
    answer["From"], answer["To"] = "noc@carrier.example", outbound["From"]
    answer["Subject"] = f"Re: {outbound['Subject']}"
    answer["In-Reply-To"] = outbound["Message-ID"]
    answer.set_content(f"{text}\n\nOn Monday, liaison wrote:\n{quoted}\n")
    return bytes(answer)


def send(port: int, raw: bytes, sender: str = "noc@carrier.example") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail(sender, ["liaison@liaison.local"], raw)


def test_reply_forgery_and_alert_through_serve(served):
    base, smtp_port, instance, token, env = served
    sent = wait_for(lambda: sorted((instance / "sent-mail").glob("*.eml")))
    outbound = message_from_bytes(sent[0].read_bytes(), policy=policy.default)
    task_id = int(outbound["X-Liaison-Task"])

    send(smtp_port, hand_written_reply(outbound, "Our ticket is open.\n\n"
                                                 "ExternalReference: CARRIER-4711"))
    assert wait_for(lambda: (api(base, token, f"/tasks/{task_id}") or {})
                    .get("external_reference")) == "CARRIER-4711"

    forged = hand_written_reply(outbound, "Action: Resolve").replace(
        outbound.get_content().split("Token: ")[1][:32].encode(), b"0" * 32)
    send(smtp_port, forged)
    rejected = wait_for(lambda: [e for e in api(base, token, f"/tasks/{task_id}/exchanges")
                                 if e["status"] == "rejected"])
    assert [(e["direction"], e["channel"]) for e in rejected] == [("In", "email")]
    assert api(base, token, f"/tasks/{task_id}")["status"] == "open"

    settings = Settings.from_env(env)
    core = Core(settings)
    try:
        core.run(mail_rules.create_rule, name="Nagios", action="detect", group="Service Desk",
                 conditions=[{"field": "subject", "match": "contains", "value": "PROBLEM"}])
    finally:
        core.close()
    send(smtp_port, ALERT.read_bytes(), sender="nagios@monitoring.example")
    opened = wait_for(lambda: [t for t in (api(base, token, "/tasks?q=core-sw-01") or {})
                               .get("items", []) if t["group"] == "Service Desk"])
    assert opened[0]["title"].startswith("** PROBLEM Service Alert: core-sw-01/PING")
