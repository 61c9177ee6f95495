"""Helpers shared by the e-mail tests (this module holds no tests itself)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from engine.domain.credentials import task_token
from engine.services import mail, mail_intake, mail_outcome, queries, tasks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
SECRET = "test-secret-key"  # tests/conftest.py's make_core


def new_task(core, seeded, title="Replace the router", group="Carrier Group") -> dict:
    return core.run(tasks.create_task, seeded["ticket"]["id"], title, "Router dead", group=group)


def fixture_mail(name: str, task_id: int, token: str | None = None) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    token = task_token(SECRET, task_id) if token is None else token
    return raw.replace(b"@@TASK@@", str(task_id).encode()).replace(b"@@TOKEN@@", token.encode())


def reply(task_id: int, text: str, *, token: str | None = None, sender="noc@carrier.example",
          message_id: str | None = None, subject: str | None = None, **headers) -> bytes:
    """A reply as a person writes it: their text above the quote of our mail (with its tags)."""
    token = task_token(SECRET, task_id) if token is None else token
    quote = f"> Submit Request: Replace the router\n>\n> TaskId: {task_id}\n"
    if token:
        quote += f"> Token: {token}\n"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "liaison@liaison.local"
    message["Subject"] = subject or f"Re: [Task #{task_id}] Submit Request: Replace the router"
    if message_id is not False:
        message["Message-ID"] = message_id or f"<{abs(hash((text, sender, task_id)))}@c.example>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(f"{text}\n\nOn Mon, 23 Nov 2026, liaison wrote:\n{quote}")
    return bytes(message)


def deliver(core, raw: bytes, envelope_from: str | None = None, source: str = "file") -> dict:
    """Receives a mail the way every intake does, then lets the worker's step process it."""
    inbox_id = core.run(mail_intake.receive, raw, source, envelope_from)
    mail.process_message(core, inbox_id)
    return core.run(mail_outcome.message_view, inbox_id)


def exchanges(core, task_id: int) -> list[dict]:
    return core.run(queries.exchanges_of_task, task_id)


def inbound(core, task_id: int) -> list[tuple[str, str, str]]:
    return [(e["request_type"], e["channel"], e["status"]) for e in exchanges(core, task_id)
            if e["direction"] == "In"]


def task(core, task_id: int) -> dict:
    return core.run(tasks.get_task, task_id)


def all_exchanges(core) -> list[dict]:
    return core.run(queries.list_exchanges, {}, None)
