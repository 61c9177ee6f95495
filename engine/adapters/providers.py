"""Outbound channels to providers, behind one Protocol.

A channel first *renders* a request into a message (stored in the outbox and shown on the
exchange, so people see exactly what was sent) and later *delivers* it from the worker.
Delivery is at least once (a crash between sending and recording the outcome sends again),
so every delivery carries a key derived from its exchange (`delivery_key`) that the receiver
deduplicates by: the mail's Message-ID (and the file name of a written mail), SOAP's
`requestId`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
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
    # the version (`updated_at`) of the provider's stored connection as the worker's claim
    # read it; None: not known. A channel keeps a provider's opened key only while it holds.
    connection_stamp: object = None


def delivery_key(secret_key: str, delivery: Delivery) -> str:
    """`liaison-exchange-<id>-<installation>`: the same for every attempt and replay of one
    exchange (an outbox row without an exchange: its row id). The installation part, derived
    from the secret key, keeps two installations talking to one provider apart."""
    stamp = hmac.new(secret_key.encode(), b"delivery-key", hashlib.sha256).hexdigest()[:8]
    if delivery.exchange_id is not None:
        return f"liaison-exchange-{delivery.exchange_id}-{stamp}"
    return f"liaison-outbox-{delivery.outbox_id}-{stamp}"


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
    """Writes each message as an .eml file named after its Message-ID (the default when no
    relay is configured). A message sent again replaces its file instead of doubling, and a
    file appears whole or not at all: it is written aside, flushed to disk, then renamed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._remove_leftovers()

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = mail_file_name(message)
        target = self.directory / f"{name}.eml"
        temporary = self.directory / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with open(temporary, "wb") as handle:
                handle.write(bytes(message))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            _sync_directory(self.directory)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise DeliveryError(f"could not write {target}: {exc}") from exc

    def _remove_leftovers(self) -> None:
        """Removes the temporary files of writers that died mid-write (their pid is gone)."""
        for leftover in self.directory.glob(".*.tmp") if self.directory.is_dir() else ():
            pid = leftover.name.rsplit(".", 3)[-3] if leftover.name.count(".") >= 3 else ""
            if pid.isdigit() and not _alive(int(pid)):
                leftover.unlink(missing_ok=True)


def mail_file_name(message: EmailMessage) -> str:
    """A file name from the Message-ID: stable for one message however often it is sent."""
    message_id = str(message.get("Message-ID") or "").strip().strip("<>")
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", message_id)[:150].lstrip(".")
    return name or f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sync_directory(directory: Path) -> None:
    """Makes a rename durable (the directory entry reaches the disk)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
        self.domain = own_address.partition("@")[2] or "liaison.local"

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
            "task_id": task["id"],
        }

    def deliver(self, message: dict, delivery: Delivery) -> dict:
        """Sends with one Message-ID per exchange, whatever the attempt: receivers (and the
        directory mailer) recognise a repeat. A message that carries its own keeps it."""
        message_id = message.get("message_id") or \
            f"<{delivery_key(self.secret_key, delivery)}@{self.domain}>"
        self.mailer.send(build_email({**message, "message_id": message_id}))
        return {"message_id": message_id}


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
