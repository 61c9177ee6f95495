"""What changed on a PSA's tickets, as inbound-queue items (pure: no I/O, no database).

A ticket is compared with what was last seen of it (its `ProviderTicket` row): a ticket never
seen and not ours is *opened*; on a known one, each new note and a new status is a change.
Our own changes are left out: tickets and notes entered by our API member, and a close we
made ourselves. ConnectWise shapes: `status {name}`, `closedFlag`, `company {id, name}`,
`_info {lastUpdated, dateEntered, enteredBy, updatedBy}`, notes with `createdBy` and
`detailDescriptionFlag` / `resolutionFlag`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine.services.provider_tickets import OPENED, NewTicket

XREF_PREFIX = "liaison:"


def parse_time(value) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def our_task_id(ticket: dict) -> int | None:
    """The task id of a ticket we created (`externalXRef` = `liaison:<task id>`)."""
    xref = str(ticket.get("externalXRef") or "")
    rest = xref[len(XREF_PREFIX):] if xref.startswith(XREF_PREFIX) else ""
    return int(rest) if rest.isdigit() else None


@dataclass
class Seen:
    """What was last seen of a ticket (a copy of its row's values)."""

    status: str | None = None
    last_note_id: int = 0
    closed: bool = False


@dataclass
class TicketChanges:
    ticket_ref: str
    items: list[dict] = field(default_factory=list)
    seen: Seen = field(default_factory=Seen)
    our_task: int | None = None


def _info(record: dict, key: str):
    return (record.get("_info") or {}).get(key)


def _mine(record: dict, own_member: str | None, key: str) -> bool:
    return bool(own_member) and (record.get(key) or _info(record, key)) == own_member


def _text(notes: list[dict], flag: str) -> str:
    chosen = [n for n in notes if n.get(flag)]
    return str(chosen[-1].get("text") or "") if chosen else ""


def _device(configurations: list[dict]) -> tuple[str | None, dict]:
    if not configurations:
        return None, {}
    first = configurations[0]
    details = {"name": first.get("name") or first.get("deviceIdentifier"),
               "serial": first.get("serialNumber"),
               "manufacturer": (first.get("manufacturer") or {}).get("name"),
               "type": (first.get("type") or {}).get("name")}
    return str(first["id"]), details


def opened_item(ticket: dict, notes: list[dict], configurations: list[dict]) -> dict:
    """The queue item of a ticket the provider opened."""
    company = ticket.get("company") or {}
    device, details = _device(configurations)
    description = next((str(n.get("text") or "") for n in notes
                        if n.get("detailDescriptionFlag")), "")
    new = NewTicket(reference=str(ticket["id"]), title=str(ticket.get("summary") or ""),
                    description=description,
                    site=str(company["id"]) if company.get("id") is not None else None,
                    site_name=company.get("name") or company.get("identifier"),
                    device=device, device_details=details,
                    created_at=_info(ticket, "dateEntered"),
                    status=(ticket.get("status") or {}).get("name"))
    return {"ticket_ref": new.reference, "change_key": OPENED, "kind": "new_ticket",
            "payload": {**new.as_payload(), "channel": "connectwise"}}


def ticket_changes(ticket: dict, notes: list[dict], seen: Seen | None, own_member: str | None,
                   resolved_statuses: set[str]) -> TicketChanges:
    """The changes of a known ticket (or a new one: `seen` None) since `seen`. `notes` are the
    ticket's notes (all, or at least those newer than seen)."""
    ref = str(ticket["id"])
    changes = TicketChanges(ref, our_task=our_task_id(ticket))
    before = seen or Seen()
    ordered = sorted(notes, key=lambda n: int(n.get("id") or 0))
    newest = max([before.last_note_id, *(int(n.get("id") or 0) for n in ordered)])
    status = str((ticket.get("status") or {}).get("name") or "")
    closed = bool(ticket.get("closedFlag"))
    changes.seen = Seen(status=status or before.status, last_note_id=newest, closed=closed)
    if seen is None:  # first sight: what exists now is the baseline
        return changes
    for note in ordered:
        note_id = int(note.get("id") or 0)
        if note_id <= before.last_note_id or _mine(note, own_member, "createdBy"):
            continue
        changes.items.append({"ticket_ref": ref, "change_key": f"note:{note_id}", "kind": "note",
                              "payload": {"note_id": note_id, "text": note.get("text") or "",
                                          "author": note.get("createdBy"),
                                          "resolution": bool(note.get("resolutionFlag")),
                                          "channel": "connectwise"}})
    if status and status != before.status and not (closed and _mine(ticket, own_member,
                                                                     "updatedBy")):
        at = _info(ticket, "lastUpdated") or ""
        changes.items.append({"ticket_ref": ref, "change_key": f"status:{status}:{at}"[:200],
                              "kind": "status", "payload": {
                                  "status": status, "closed": closed,
                                  "resolved": status.lower() in resolved_statuses,
                                  "resolution": _text(ordered, "resolutionFlag"),
                                  "channel": "connectwise"}})
    return changes
