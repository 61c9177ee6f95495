"""Inbound from a PSA (ConnectWise): the callback hint, the poller, the hourly download of
sites and devices, and the nightly reconciliation. Each reads the provider's API through a
`PsaReader` the composition root makes (`core.psa_readers[channel](provider_id)`) and hands
plain changes to the inbound queue; nothing here changes the provider's side (that goes
through the channel and the outbox).

Polling alone is enough: it asks for tickets with `lastUpdated` after the newest it has seen
(paged), so a lost callback loses nothing; a callback only makes the poll due now.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.exceptions import Conflict, LiaisonError, NotFound
from engine.services import inbound_queue
from engine.services.linked_changes import is_resolved, returns_task
from engine.services.psa_changes import (
    Seen,
    opened_item,
    our_task_id,
    parse_time,
    ticket_changes,
)

log = logging.getLogger(__name__)

POLL_JOB = "psa-poll"
SITES_JOB = "psa-sites"
RECONCILE_JOB = "psa-reconcile"
OVERLAP = timedelta(seconds=1)  # lastUpdated has whole seconds: look again at the last one
READERS = 4  # a poll's reads in flight at once (the HTTP session keeps 4 connections)


class PsaReader(Protocol):
    """What the poller reads from a PSA (ConnectWise shapes, lists already paged through)."""

    def changed_tickets(self, since: datetime) -> list[dict]: ...
    def ticket(self, ticket_id: str) -> dict | None: ...
    def notes(self, ticket_id: str, after: int = 0) -> list[dict]: ...
    def ticket_configurations(self, ticket_id: str) -> list[dict]: ...
    def resolved_statuses(self) -> set[str]: ...
    def companies(self) -> list[dict]: ...
    def configurations(self) -> list[dict]: ...


def callback_hint(uow, key: str) -> dict:
    """A callback arrived with `key`: the poller is made due now. The body is never read (it
    is only a hint); a wrong key is 404 and changes nothing."""
    repo = TwowayRepository(uow.session)
    row = repo.inbound_by_key(key or "")
    if row is None:
        raise NotFound("no such callback")
    if row.enabled:
        repo.job_due_now(POLL_JOB, uow.context.clock.now())
        uow.after_commit.append(uow.context.work_available.set)
        uow.commit()
    return {"ok": True}


def reader_for(core, provider_id: int) -> PsaReader:
    provider = core.run(lambda uow: uow.repo.provider(provider_id))
    make = getattr(core, "psa_readers", {}).get(provider.channel)
    if make is None:
        raise Conflict(f"provider {provider.name} (channel {provider.channel}) has no API to "
                       f"read from: its sites, devices and tickets arrive with what it sends")
    return make(provider_id)


# -- polling -----------------------------------------------------------------------------------

def _poll_state(uow, provider_id: int) -> dict:
    provider = uow.repo.provider(provider_id)
    row = TwowayRepository(uow.session).inbound(provider)
    cursor = row.poll_cursor or provider.created_at
    uow.commit()
    return {"cursor": cursor, "own_member": row.own_member}


def _seen_and_known(uow, provider_id: int, refs: list[str]) -> tuple[dict[str, Seen], set[str]]:
    """What the poller saw of these tickets before (linked ones) and which it knows at all."""
    rows = TwowayRepository(uow.session).provider_tickets_by_refs(provider_id, refs)
    return ({r.external_id: Seen(r.status, r.last_note_id or 0, r.closed) for r in rows
             if r.linked}, {r.external_id for r in rows})


def _first_sight_of_ours(ticket: dict, resolved: set[str]) -> Seen:
    """A ticket we created, seen for the first time: its current status counts as seen unless
    it already asks something of us; every note not ours is new."""
    status = str((ticket.get("status") or {}).get("name") or "")
    actionable = ticket.get("closedFlag") or returns_task(status) or is_resolved(
        status, status.lower() in resolved)
    return Seen(status=None if actionable else status, last_note_id=0)


def changes_of(reader: PsaReader, ticket: dict, seen: Seen | None, known: bool,
               own_member: str | None, resolved: set[str]):
    """(items, what is now seen, our task id) of one ticket."""
    ref = str(ticket["id"])
    if seen is None and not known and our_task_id(ticket) is None:
        notes = reader.notes(ref)
        changes = ticket_changes(ticket, notes, None, own_member, resolved)
        changes.items.append(opened_item(ticket, notes, reader.ticket_configurations(ref)))
        return changes
    if seen is None and our_task_id(ticket) is not None:
        seen = _first_sight_of_ours(ticket, resolved)
    if seen is None:  # known but unlinked: nothing to apply, remember where it stands
        return ticket_changes(ticket, [], None, own_member, resolved)
    return ticket_changes(ticket, reader.notes(ref, after=seen.last_note_id), seen, own_member,
                          resolved)


def _learn_own_member(tickets: list[dict], own_member: str | None) -> str | None:
    """Who we are on the PSA's side: the member that entered the tickets we created."""
    for ticket in tickets:
        entered = (ticket.get("_info") or {}).get("enteredBy")
        if our_task_id(ticket) is not None and entered:
            return entered
    return own_member


def _not_ours(repo: TwowayRepository, provider_id: int, items: list[dict]) -> list[dict]:
    """Leaves out notes we wrote (recognised by their ids, even before we know which member
    our API keys belong to)."""
    note_ids = [item["payload"]["note_id"] for item in items if item["kind"] == "note"]
    ours = repo.notes_we_wrote(provider_id, note_ids)
    return [item for item in items
            if item["kind"] != "note" or item["payload"]["note_id"] not in ours]


def _store(uow, provider_id: int, results: list, cursor: datetime | None, own_member,
           source: str) -> int:
    repo = TwowayRepository(uow.session)
    refs = [changes.ticket_ref for changes in results]
    refs += [f"task:{changes.our_task}" for changes in results if changes.our_task is not None]
    known = {row.external_id: row for row in repo.provider_tickets_by_refs(provider_id, refs)}
    for changes in results:
        repo.remember_ticket(provider_id, changes.ticket_ref, changes.seen, changes.our_task,
                             known)
    items = _not_ours(repo, provider_id, [item for changes in results for item in changes.items])
    added = inbound_queue.enqueue(uow, provider_id, items, source)
    row = repo.inbound(uow.repo.provider(provider_id))
    if cursor is not None and (row.poll_cursor is None or cursor > row.poll_cursor):
        row.poll_cursor = cursor
    row.own_member = own_member or row.own_member
    uow.commit()
    return added


def poll_provider(core, provider_id: int, reader: PsaReader) -> dict:
    """Turns the tickets changed since the last poll into inbound items -> counts."""
    state = core.run(_poll_state, provider_id)
    tickets = reader.changed_tickets(state["cursor"] - OVERLAP)
    own_member = _learn_own_member(tickets, state["own_member"])
    refs = [str(t["id"]) for t in tickets]
    seen, known = core.run(_seen_and_known, provider_id, refs)
    resolved = reader.resolved_statuses() if tickets else set()

    def changes(ticket: dict):
        ref = str(ticket["id"])
        return changes_of(reader, ticket, seen.get(ref), ref in known, own_member, resolved)

    # each ticket's notes and devices: a few reads at once (ConnectWise's latency), in order
    with ThreadPoolExecutor(max(1, min(READERS, len(tickets))),
                            thread_name_prefix="liaison-psa-read") as pool:
        results = list(pool.map(changes, tickets))
    stamps = [parse_time((t.get("_info") or {}).get("lastUpdated")) for t in tickets]
    cursor = max((s for s in stamps if s is not None), default=None)
    added = core.run(_store, provider_id, results, cursor, own_member, "poll")
    return {"tickets": len(tickets), "queued": added}


def _polled_providers(uow) -> list[int]:
    readers = getattr(uow.context, "psa_readers", {})
    return [p.id for p in uow.repo.providers() if p.channel in readers]


def poll_job(core) -> dict:
    """The `psa-poll` job: every PSA provider (inbound on or off: while off the queue keeps
    what arrives), then the queue is drained."""
    summary = {}
    for provider_id in core.run(_polled_providers):
        try:
            summary[str(provider_id)] = poll_provider(core, provider_id,
                                                      reader_for(core, provider_id))
        except LiaisonError as exc:  # one provider's outage never stops the others
            log.warning("polling provider %s failed: %s", provider_id, exc.message)
            summary[str(provider_id)] = {"error": exc.message}
    summary["queue"] = inbound_queue.drain_job(core)
    return summary


# -- nightly reconciliation ---------------------------------------------------------------------

def _open_links(uow, provider_id: int) -> dict[str, Seen]:
    return {link.external_id: Seen(link.status, link.last_note_id or 0, link.closed)
            for link in TwowayRepository(uow.session).open_linked_tickets(provider_id)
            if link.external_id.isdigit()}


def reconcile_provider(core, provider_id: int, reader: PsaReader) -> dict:
    """Compares open linked tasks with the provider's tickets and queues what polling missed
    (a note, a status, a close) -> the drift repaired."""
    state = core.run(_poll_state, provider_id)
    links = core.run(_open_links, provider_id)
    resolved = reader.resolved_statuses() if links else set()
    results, missing = [], []
    for ref, seen in links.items():
        ticket = reader.ticket(ref)
        if ticket is None:
            missing.append(ref)
            continue
        results.append(ticket_changes(ticket, reader.notes(ref, after=seen.last_note_id), seen,
                                      state["own_member"], resolved))
    repaired = core.run(_store, provider_id, results, None, state["own_member"], "reconcile")
    drift = [{"ticket": c.ticket_ref, "changes": [i["change_key"] for i in c.items]}
             for c in results if c.items]
    return {"checked": len(links), "repaired": repaired, "drift": drift, "missing": missing}


def reconcile_job(core) -> dict:
    summary = {}
    for provider_id in core.run(_polled_providers):
        try:
            summary[str(provider_id)] = reconcile_provider(core, provider_id,
                                                           reader_for(core, provider_id))
        except LiaisonError as exc:
            summary[str(provider_id)] = {"error": exc.message}
    summary["queue"] = inbound_queue.drain_job(core)
    return summary


# -- sites and devices ---------------------------------------------------------------------------

def _store_sites(uow, provider_id: int, companies: list[dict], configurations: list[dict]) -> dict:
    repo, now = TwowayRepository(uow.session), uow.context.clock.now()
    for company in companies:
        repo.upsert_site(provider_id, str(company["id"]),
                         str(company.get("name") or company.get("identifier") or company["id"]),
                         {"identifier": company.get("identifier")}, now)
    for item in configurations:
        repo.upsert_device(provider_id, str(item["id"]), device_values(item), now)
    uow.commit()
    return {"sites": len(companies), "devices": len(configurations)}


def device_values(item: dict) -> dict:
    """A configuration as a device row: name, serial, manufacturer, type, its company's id;
    other details kept for the asset's notes."""
    def clip(value, limit):
        return str(value)[:limit] if value not in (None, "") else None

    details = {key: item.get(key) for key in ("modelNumber", "tagNumber", "ipAddress",
                                              "osType", "location")
               if item.get(key) not in (None, "", {})}
    return {"name": clip(item.get("name") or item.get("deviceIdentifier") or item["id"], 300),
            "serial": clip(item.get("serialNumber"), 200),
            "manufacturer": clip((item.get("manufacturer") or {}).get("name"), 200),
            "type": clip((item.get("type") or {}).get("name"), 100),
            "site_external_id": clip((item.get("company") or {}).get("id"), 100),
            "details": {k: v if isinstance(v, str | int) else str(v) for k, v in details.items()}}


def refresh_sites(core, provider_id: int) -> dict:
    """`POST /providers/<id>/refresh` and the hourly job: downloads sites and devices."""
    reader = reader_for(core, provider_id)
    return core.run(_store_sites, provider_id, reader.companies(), reader.configurations())


def sites_job(core) -> dict:
    summary = {}
    for provider_id in core.run(_polled_providers):
        try:
            summary[str(provider_id)] = refresh_sites(core, provider_id)
        except LiaisonError as exc:
            summary[str(provider_id)] = {"error": exc.message}
    return summary


def provider_ticket_view(link: orm.ProviderTicket) -> dict:
    return {"external_id": link.external_id, "task_id": link.task_id, "origin": link.origin,
            "linked": link.linked, "status": link.status, "closed": link.closed}
