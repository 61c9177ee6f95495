"""Outbound channels to providers, behind one Protocol.

A channel first *renders* a request into a message (stored in the outbox and shown on the
exchange, so people see exactly what was sent) and later *delivers* it from the worker.
"""

from __future__ import annotations

import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from engine.domain import tags
from engine.domain.credentials import task_token
from engine.exceptions import DeliveryError


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    channel: str
    endpoint_url: str | None = None
    email: str | None = None
    tag_labels: dict = field(default_factory=dict)
    id: int | None = None
    # channel-specific values resolved for this request (e.g. ConnectWise's effective
    # settings for the task's customer); never secrets
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundRequest:
    request_type: str
    task: dict
    ticket: dict
    text: str = ""


@dataclass(frozen=True)
class Delivery:
    """Which stored delivery a `deliver` call makes. `exchange_id` is stable across retries
    and replays: channels use it as the key a receiver can deduplicate by."""

    outbox_id: int
    exchange_id: int | None = None
    attempt: int = 1


class ProviderChannel(Protocol):
    name: str

    def render(self, provider: ProviderInfo, request: OutboundRequest) -> dict: ...

    def deliver(self, message: dict, delivery: Delivery) -> dict: ...


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Sends through an SMTP relay (LIAISON_OUTBOUND_SMTP)."""

    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            retryable = exc.smtp_code < 500
            raise DeliveryError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retryable) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP relay {self.host}:{self.port}: {exc}") from exc


class DirectoryMailer:
    """Writes each message as an .eml file: the default when no relay is configured."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        (self.directory / f"{name}.eml").write_bytes(bytes(message))


def build_email(message: dict) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = message["from"]
    mail["To"] = message["to"]
    mail["Subject"] = message["subject"]
    mail["Message-ID"] = message["message_id"]
    mail["Date"] = formatdate(usegmt=True)
    # RFC 3834: our mail is machine-generated, so well-behaved auto-responders stay silent.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Liaison-Task"] = str(message.get("task_id", ""))
    mail.set_content(message["body"])
    return mail


class EmailChannel:
    """Requests to providers by e-mail, carrying the tags of CONTRACT §5."""

    name = "email"

    def __init__(self, mailer: Mailer, secret_key: str, own_address: str) -> None:
        self.mailer = mailer
        self.secret_key = secret_key
        self.own_address = own_address

    def render(self, provider: ProviderInfo, request: OutboundRequest) -> dict:
        if not provider.email:
            raise DeliveryError(f"provider {provider.name} has no e-mail address", retryable=False)
        task = request.task
        labels = tags.labels_for(provider.tag_labels)
        tag_block = tags.render_tags(labels, {
            "task_id": task["id"],
            "external_reference": task.get("external_reference"),
            "token": task_token(self.secret_key, task["id"]),
        })
        body = "\n\n".join(part for part in (
            f"{request.request_type}: {task['title']}",
            request.text.strip(),
            task.get("description", "").strip() if request.request_type == "Submit Request" else "",
            tag_block,
        ) if part)
        return {
            "to": provider.email,
            "from": self.own_address,
            "subject": tags.subject_for(task["id"], f"{request.request_type}: {task['title']}"),
            "body": body + "\n",
            "message_id": make_msgid(domain=self.own_address.partition("@")[2] or None),
            "task_id": task["id"],
        }

    def deliver(self, message: dict, delivery: Delivery) -> dict:
        self.mailer.send(build_email(message))
        return {"message_id": message["message_id"]}


class ChannelRegistry:
    """Channels by name; the SOAP channel registers itself here too."""

    def __init__(self) -> None:
        self._channels: dict[str, ProviderChannel] = {}

    def register(self, channel: ProviderChannel) -> None:
        self._channels[channel.name] = channel

    def get(self, name: str) -> ProviderChannel:
        try:
            return self._channels[name]
        except KeyError:
            raise DeliveryError(f"no channel named {name!r}", retryable=False) from None
