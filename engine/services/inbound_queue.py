"""The durable inbound queue (CONTRACT §7): every change a provider makes (a ticket it opened,
a note, a status) is stored first, idempotent by (provider, ticket, change), then applied in
order per ticket by the same inbound use cases SOAP and e-mail use.

While a provider's inbound is off (or it has no inbox group) its items are held; enabling
drains them in order. An item that cannot be applied goes to the provider's error report
(replayable) and the others go on: one bad item never blocks the queue. An item that failed
for a passing reason (a busy task) is retried, and later items of its ticket wait for it.
"""

from __future__ import annotations

import logging

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.exceptions import Busy, ConcurrentUpdate, LiaisonError, NotFound
from engine.services import linked_changes, provider_tickets
from engine.services.inbound_settings import wake_queue
from engine.services.views import iso

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 200
NEW_TICKET_BATCH = 50  # provider-opened tickets applied in one transaction (savepoint each)
PASSING = (Busy, ConcurrentUpdate)
KIND_NAMES = {"new_ticket": "New Ticket", "note": "Inbound note", "status": "Inbound status"}


def enqueue(uow, provider_id: int, changes: list[dict], source: str) -> int:
    """Stores changes `{ticket_ref, change_key, kind, payload}` (repeats are skipped) and
    wakes the queue; the caller commits -> how many were new."""
    now = uow.context.clock.now()
    added = TwowayRepository(uow.session).enqueue(
        {**change, "provider_id": provider_id, "source": source, "status": "pending",
         "attempts": 0, "received_at": now} for change in changes)
    if added:
        wake_queue(uow)
    return added


def _apply(uow, provider: orm.Provider, group: orm.Group, item: orm.InboundItem) -> None:
    """Applies one item; the item is already marked done, so that it commits with the change."""
    if item.kind == "new_ticket":
        result = provider_tickets.open_provider_ticket(
            uow, provider, group,
            provider_tickets.checked(provider_tickets.NewTicket.from_payload(item.payload)),
            item.payload.get("channel") or provider.channel)
        item.task_id = result["taskId"]
        uow.commit()
        return
    linked_changes.apply_change(uow, provider, item)


def _finish(item: orm.InboundItem, status: str, error: str | None, now) -> None:
    item.status, item.error, item.processed_at = status, error, now
    item.attempts += 1


def apply_item(uow, item_id: int) -> str:
    """Applies one pending item in one transaction -> its new status ("held" when its
    provider's inbound is off)."""
    repo = TwowayRepository(uow.session)
    item = repo.item(item_id)
    if item is None or item.status != "pending":
        return "gone"
    provider = uow.repo.provider(item.provider_id)
    row = repo.inbound(provider)
    if not row.enabled or row.group is None:
        return "held"
    _finish(item, "done", None, uow.context.clock.now())
    _apply(uow, provider, row.group, item)
    return item.status


def record_failure(uow, item_id: int, message: str, final: bool) -> None:
    """An item that could not be applied: to the error report (final), or retried later."""
    item = TwowayRepository(uow.session).item(item_id)
    if item is None or item.status != "pending":
        return
    item.attempts += 1
    item.error = message[:2000]
    if final or item.attempts >= MAX_ATTEMPTS:
        item.status, item.processed_at = "error", uow.context.clock.now()
    uow.commit()


def _run_one(core, item_id: int) -> str:
    try:
        return core.run(apply_item, item_id)
    except PASSING as exc:
        core.run(record_failure, item_id, exc.message, False)
        return "retry"
    except LiaisonError as exc:
        core.run(record_failure, item_id, f"{exc.code}: {exc.message}", True)
        return "error"
    except Exception as exc:  # a bug or a database failure: retried, then reported
        log.exception("inbound item %s failed", item_id)
        core.run(record_failure, item_id, f"{type(exc).__name__}: {exc}", False)
        return "retry"


def apply_new_tickets(uow, item_ids: list[int]) -> dict[int, str]:
    """Opens several provider-opened tickets in one transaction -> outcome per item. The
    items, and the sites, devices and ticket links they name, are read with one statement
    each; each ticket then costs its four INSERTs (ticket, task, note, exchange), and the
    items and links are updated together at commit. A ticket refused by its checks goes to
    the error report and the others are kept; any other failure fails the batch, which is
    then applied one item at a time (`_run_batch`)."""
    repo, now, outcomes = TwowayRepository(uow.session), uow.context.clock.now(), {}
    items = repo.items_by_ids(item_ids)
    by_provider: dict[int, list] = {}
    for item_id in item_ids:
        item = items.get(item_id)
        if item is None or item.status != "pending":
            outcomes[item_id] = "gone"
            continue
        by_provider.setdefault(item.provider_id, []).append(item)
    with uow.session.no_autoflush:  # the items' and links' updates go out together at commit
        for provider_id, batch in by_provider.items():
            provider = uow.repo.provider(provider_id)
            row = repo.inbound(provider)
            if not row.enabled or row.group is None:
                outcomes.update((item.id, "held") for item in batch)
                continue
            checked = []
            for item in batch:
                try:
                    checked.append((item, provider_tickets.checked(
                        provider_tickets.NewTicket.from_payload(item.payload))))
                except LiaisonError as exc:  # refused before anything is written
                    _finish(item, "error", f"{exc.code}: {exc.message}"[:2000], now)
                    outcomes[item.id] = "error"
            known = provider_tickets.Known.read(uow, provider_id, [t for _, t in checked])
            for item, ticket in checked:
                item.task_id = provider_tickets.open_provider_ticket(
                    uow, provider, row.group, ticket,
                    item.payload.get("channel") or provider.channel, known)["taskId"]
                _finish(item, "done", None, now)
                outcomes[item.id] = "done"
    uow.commit()
    return outcomes


def _pending(uow, limit: int) -> list[tuple]:
    repo = TwowayRepository(uow.session)
    return repo.pending_items(repo.enabled_provider_ids(), limit)


def _batches(pending: list[tuple]):
    """Consecutive new tickets together (applied in one transaction), other items alone."""
    batch: list[tuple] = []
    for row in pending:
        if row[3] == "new_ticket":
            batch.append(row)
            if len(batch) >= NEW_TICKET_BATCH:
                yield batch
                batch = []
            continue
        if batch:
            yield batch
            batch = []
        yield [row]
    if batch:
        yield batch


def _run_batch(core, batch: list[tuple]) -> dict[int, str]:
    if len(batch) == 1 or batch[0][3] != "new_ticket":
        return {batch[0][0]: _run_one(core, batch[0][0])}
    try:
        return core.run(apply_new_tickets, [row[0] for row in batch])
    except Exception:  # the database failed the batch: one by one, each with its own outcome
        log.info("inbound batch failed; applying its items one by one", exc_info=True)
        return {row[0]: _run_one(core, row[0]) for row in batch}


def drain(core, limit: int = BATCH) -> dict:
    """Applies pending items of enabled providers, oldest first; a ticket whose item must be
    retried waits (its later items keep their order). -> counts by outcome."""
    counts: dict[str, int] = {}
    waiting: set[tuple] = set()
    for batch in _batches(core.run(_pending, limit)):
        batch = [row for row in batch if (row[1], row[2]) not in waiting]
        if not batch:
            continue
        tickets = {row[0]: (row[1], row[2]) for row in batch}
        for item_id, outcome in _run_batch(core, batch).items():
            if outcome == "retry":
                waiting.add(tickets[item_id])
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def drain_job(core) -> dict:
    """The `inbound-queue` job: drains until nothing more can be applied in this run."""
    total: dict[str, int] = {}
    while True:
        counts = drain(core)
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
        if sum(v for k, v in counts.items() if k not in ("retry", "held", "gone")) < 1:
            return total


def replay_item(uow, provider_id: int, item_id: int) -> dict:
    """Puts an inbound item that failed back in the queue."""
    item = TwowayRepository(uow.session).item(item_id)
    if item is None or item.provider_id != provider_id:
        raise NotFound(f"inbound item {item_id} of provider {provider_id} not found")
    if item.status == "error":
        item.status, item.attempts, item.error = "pending", 0, None
        wake_queue(uow)
    view = item_view(item)
    uow.commit()
    return view


def item_view(item: orm.InboundItem) -> dict:
    return {"id": item.id, "ticket": item.ticket_ref, "change": item.change_key,
            "kind": item.kind, "source": item.source, "status": item.status,
            "attempts": item.attempts, "error": item.error, "task_id": item.task_id,
            "received_at": iso(item.received_at), "processed_at": iso(item.processed_at)}


def inbound_errors(uow, provider_id: int, limit: int = 50) -> list[dict]:
    """Inbound items that could not be applied, as error-report entries."""
    return [{"at": iso(item.processed_at or item.received_at),
             "operation": KIND_NAMES.get(item.kind, item.kind), "status": "failed",
             "message": f"ticket {item.ticket_ref}: {item.error}", "exchange_id": None,
             "inbound_item_id": item.id, "task_id": item.task_id}
            for item in TwowayRepository(uow.session).failed_items(provider_id, limit)]


def list_items(uow, provider_id: int, status: str | None = None, limit: int = 200) -> list[dict]:
    uow.repo.provider(provider_id)
    return [item_view(item) for item in
            TwowayRepository(uow.session).items(provider_id, status, limit)]
