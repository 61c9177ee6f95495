"""Provider channel `connectwise`: requests become ConnectWise service-ticket calls (CONTRACT §7).

Submit Request -> a new ticket (`externalXRef` = `liaison:<task id>`; its id becomes the
task's reference through the delivery result's `external_reference`). Update and Resolution
Rejection -> a note shown in the ticket's detail description. Closed -> the board's closed
status by JSON Patch when automatic closure is on (else a note).

`render` runs inside the caller's transaction and sees the effective settings the composition
root resolved (`ProviderInfo.settings`); the message never holds a secret: `deliver` asks the
composition root for the provider's client by provider id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from engine.adapters.connectwise_callbacks import CALLBACK_OPERATIONS, run_callback_operation
from engine.adapters.connectwise_client import ApiError, ConnectWiseClient
from engine.adapters.providers import Delivery, OutboundRequest, ProviderInfo
from engine.exceptions import DeliveryError

log = logging.getLogger(__name__)

SUMMARY_MAX = 100
# A create delivered this long after it was rendered may be a crashed worker's, taken over
# when its lease expired, or a replay: look for the ticket before creating it.
LOOK_FIRST_AFTER = 60.0
XREF_PREFIX = "liaison:"
REFERENCES = (("board", "board"), ("type", "service_type"), ("priority", "priority"),
              ("contact", "contact"), ("company", "company"), ("agreement", "agreement"))


def xref(task_id: int) -> str:
    return f"{XREF_PREFIX}{task_id}"


def _summary(title: str) -> str:
    title = " ".join((title or "").split()) or "(no title)"
    return title if len(title) <= SUMMARY_MAX else title[:SUMMARY_MAX - 1] + "…"


def _ticket_id(reference: str | None) -> int | None:
    reference = (reference or "").strip()
    return int(reference) if reference.isdigit() else None


class ConnectWiseChannel:
    """See the module docstring. `client_for(provider_id, stamp)` is the composition root's
    look-up of the provider's connection (it raises DeliveryError when there is none; `stamp`
    is the connection's version as the worker's claim read it, see `Delivery`)."""

    name = "connectwise"
    concurrency = 4  # bound by ConnectWise's latency: a worker keeps up to 4 calls in flight

    def __init__(self, client_for: Callable[[int], ConnectWiseClient]) -> None:
        self.client_for = client_for
        # creates whose outcome was unknown in this process: look before creating again
        self._uncertain: set[int] = set()
        self._lock = threading.Lock()

    # -- render (inside the transaction)
    def render(self, provider: ProviderInfo, request: OutboundRequest) -> dict:
        if provider.id is None or not provider.settings.get("connected"):
            raise DeliveryError(f"provider {provider.name} has no ConnectWise connection yet",
                                retryable=False)
        settings, task = provider.settings, request.task
        if settings.get("enabled") is False:
            raise DeliveryError(f"ConnectWise is disabled for customer {task.get('customer')!r} "
                                f"at provider {provider.name}", retryable=False)
        base = {"provider_id": provider.id, "task_id": task["id"]}
        kind = request.request_type
        if kind == "Submit Request":
            return {**base, "operation": "create_ticket", "rendered_at": round(time.time(), 3),
                    "ticket": self._ticket(task, request, settings)}
        ticket_id = _ticket_id(task.get("external_reference"))
        if kind in ("Update", "Resolution Rejection"):
            prefix = "Resolution rejected: " if kind == "Resolution Rejection" else ""
            return {**base, "operation": "add_note", "ticket_id": ticket_id,
                    "note": {"text": prefix + (request.text or "(no text)"),
                             "detailDescriptionFlag": True}}
        if kind == "Closed":
            if settings.get("auto_close"):
                return {**base, "operation": "close_ticket", "ticket_id": ticket_id,
                        "status": settings.get("closed_status"),
                        "board": settings.get("refs", {}).get("board")}
            text = "Closed at our end" + (f": {request.text}" if request.text else ".")
            return {**base, "operation": "add_note", "ticket_id": ticket_id,
                    "note": {"text": text, "detailDescriptionFlag": True}}
        raise DeliveryError(f"no ConnectWise operation for {kind!r}", retryable=False)

    @staticmethod
    def _ticket(task: dict, request: OutboundRequest, settings: dict) -> dict:
        description = "\n\n".join(part for part in (
            (task.get("description") or "").strip(), (request.text or "").strip()
            if request.text and request.text.strip() != (task.get("description") or "").strip()
            else "") if part)
        ticket = {"summary": _summary(task["title"]),
                  "initialDescription": description or task["title"],
                  "externalXRef": xref(task["id"])}
        refs = settings.get("refs", {})
        for theirs, ours in REFERENCES:
            if refs.get(ours):
                ticket[theirs] = refs[ours]
        return ticket

    # -- deliver (in the worker)
    def deliver(self, message: dict, delivery: Delivery) -> dict:
        client = self.client_for(message["provider_id"], delivery.connection_stamp)
        operation = message["operation"]
        if operation == "create_ticket":
            return self._create(client, message, delivery)
        if operation in CALLBACK_OPERATIONS:  # the two-way link's callback registration
            return run_callback_operation(client, message)
        ticket_id = message.get("ticket_id") or self._find(client, message["task_id"])
        if ticket_id is None:
            raise DeliveryError(f"the ConnectWise ticket of task {message['task_id']} is not known "
                                f"yet (its Submit Request has not been delivered); retrying")
        if operation == "add_note":
            note = client.add_note(ticket_id, message["note"])
            return {"ticket_id": ticket_id, "note_id": note.get("id") if note else None}
        if operation == "close_ticket":
            status = message.get("status") or self._closed_status(client, message.get("board"))
            ticket = client.set_ticket_status(ticket_id, status)
            return {"ticket_id": ticket_id, "status": (ticket or {}).get("status", {}).get("name")}
        raise DeliveryError(f"unknown ConnectWise operation {operation!r}", retryable=False)

    def _create(self, client: ConnectWiseClient, message: dict, delivery: Delivery) -> dict:
        key = delivery.exchange_id or -delivery.outbox_id
        with self._lock:
            uncertain = key in self._uncertain
        late = time.time() - float(message.get("rendered_at") or 0) > LOOK_FIRST_AFTER
        if delivery.attempt > 1 or uncertain or late:
            # an earlier attempt may have created it: adopt that ticket, never make a second
            found = self._find(client, message["task_id"])
            if found is not None:
                return self._created(found, adopted=True, key=key)
        try:
            ticket = client.create_ticket(message["ticket"])
        except ApiError as exc:
            if not exc.unknown_outcome:
                raise
            with self._lock:
                self._uncertain.add(key)
            found = self._find_quietly(client, message["task_id"])
            if found is None:
                raise
            return self._created(found, adopted=True, key=key)
        if not isinstance(ticket, dict) or not ticket.get("id"):
            raise DeliveryError("ConnectWise answered the ticket's creation without its id")
        return self._created(ticket["id"], adopted=False, key=key)

    def _created(self, ticket_id: int, adopted: bool, key: int) -> dict:
        with self._lock:
            self._uncertain.discard(key)
        # created: the outbox applies the id as the task's reference (Acknowledgement/In)
        return {"created": True, "external_reference": str(ticket_id), "ticket_id": ticket_id,
                "adopted": adopted}

    @staticmethod
    def _find(client: ConnectWiseClient, task_id: int) -> int | None:
        found = client.tickets_by_xref(xref(task_id))
        return found[0]["id"] if found else None

    def _find_quietly(self, client: ConnectWiseClient, task_id: int) -> int | None:
        try:
            return self._find(client, task_id)
        except ApiError as exc:
            log.info("look-up of task %s's ticket after an unknown outcome failed: %s", task_id,
                     exc.message)
            return None

    @staticmethod
    def _closed_status(client: ConnectWiseClient, board: dict | None) -> str:
        if not board or not board.get("id"):
            raise DeliveryError("no closed status: set the provider's board (settings) first",
                                retryable=False)
        statuses = client.get_all(f"/service/boards/{int(board['id'])}/statuses",
                                  conditions="closedStatus=true", order_by="sortOrder")
        # filtered here too: older servers ignore some conditions
        statuses = sorted((s for s in statuses if s.get("closedStatus") and not s.get("inactive")),
                          key=lambda s: (s.get("sortOrder") or 0, s["id"]))
        if not statuses:
            raise DeliveryError(f"board {board.get('name')!r} has no status flagged closed",
                                retryable=False)
        return statuses[0]["name"]
