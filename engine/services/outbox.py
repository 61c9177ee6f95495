"""Outbound delivery from the outbox: claim, deliver, record; and replay of an exchange."""

from __future__ import annotations

import logging
from datetime import timedelta

from engine.adapters import orm
from engine.domain.events import Direction, ExchangeStatus
from engine.exceptions import Conflict, DeliveryError, LiaisonError
from engine.services import inbound
from engine.services.leases import lease_length
from engine.services.operators import UNRENDERED, queue_delivery
from engine.services.views import exchange_view

log = logging.getLogger(__name__)


def claim_due(uow, worker: str, limit: int = 20) -> list[dict]:
    """Leases up to `limit` due outbox items to this worker (one statement) and commits;
    returns what to deliver: id, exchange_id, channel, attempts, message, task_id and
    connection_stamp (see `OutboxRepository.claim_outbox`).

    The lease is short and renewed by the worker's heartbeat (engine.services.leases): the
    rows of a worker that died are due again one lease length later."""
    now = uow.context.clock.now()
    claimed = uow.repo.claim_outbox(worker, now, now + lease_length(uow.context.settings), limit)
    uow.commit()
    return claimed


def _backoff(settings, attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.delivery_backoff_seconds * (2 ** (attempts - 1)), 3600))


def record_outcome(uow, item_id: int, worker: str, result: dict | None,
                   error: DeliveryError | None) -> None:
    """Stores the outcome of one delivery attempt on the outbox item and its exchange."""
    record_outcomes(uow, worker, [(item_id, result, error)])


def record_outcomes(uow, worker: str,
                    outcomes: list[tuple[int, dict | None, DeliveryError | None]]) -> int:
    """Stores the outcomes of several delivery attempts `(item id, result, error)` in one
    transaction: the items and their exchanges are read with one statement and written with
    one statement per table; an outcome whose lease was lost (taken over after it ran out) is
    left to the new holder. A delivery that created the provider's record applies its
    reference to the task in this same transaction (`_acknowledge_reference`). -> how many
    were recorded."""
    held = uow.repo.held_outbox(worker, [item_id for item_id, _, _ in outcomes])
    settings, now, stamp = uow.context.settings, uow.context.clock.now(), orm.utcnow()
    items, exchanges = [], []
    for item_id, result, error in outcomes:
        row = held.get(item_id)
        if row is None:
            continue
        attempts = row["attempts"] + 1
        if error is None:
            result = dict(result or {})
            if result.get("created") and result.get("external_reference"):
                result = _acknowledge_reference(uow, row, str(result["external_reference"]),
                                                result)
            items.append(_item(item_id, "done", attempts, None, row["next_attempt_at"]))
            exchange = (str(ExchangeStatus.DELIVERED), None, result)
        else:
            final = not error.retryable or attempts >= settings.delivery_attempts
            # never sooner than the provider asked (HTTP 429 Retry-After)
            wait = max(_backoff(settings, attempts), timedelta(seconds=error.retry_after or 0))
            items.append(_item(item_id, "failed" if final else "pending", attempts,
                               error.message, now + wait))
            exchange = (str(ExchangeStatus.FAILED if final else ExchangeStatus.PENDING),
                        error.message, row["result"])
        if row["exchange_id"] is not None:
            exchanges.append({"b_id": row["exchange_id"], "b_status": exchange[0],
                              "b_attempts": attempts, "b_error": exchange[1],
                              "b_result": exchange[2], "b_updated_at": stamp})
    uow.repo.finish_outbox(items)
    uow.repo.finish_exchanges(exchanges)
    uow.commit()
    return len(items)


def _item(item_id: int, status: str, attempts: int, error: str | None, next_attempt_at) -> dict:
    return {"b_id": item_id, "b_status": status, "b_attempts": attempts,
            "b_last_error": error, "b_next_attempt_at": next_attempt_at}


def _acknowledge_reference(uow, row: dict, reference: str, result: dict) -> dict:
    """A delivery that created the provider's record (a ConnectWise ticket; the result says
    `created`: a SOAP answer's reference is not one, its provider acknowledges) names its id:
    the task gets it as its reference as if the provider had acknowledged (Acknowledgement/In,
    delivered, on the exchange's channel), in the transaction of the outcome. Idempotent by
    exchange. -> the exchange's result."""
    if row["task_id"] is None:
        return result
    source = inbound.Inbound(provider=row["provider"], channel=row["channel"],
                             request_id=f"delivered-{row['exchange_id']}")
    try:
        with uow.commits_held():  # committed with the outcomes
            inbound.acknowledge_external(uow, row["task_id"], reference, source)
    except LiaisonError as exc:  # checked before anything is written: the outcome still counts
        log.warning("reference %s of exchange %s not applied to task %s: %s", reference,
                    row["exchange_id"], row["task_id"], exc.message)
        return {**result, "reference_not_applied": exc.message}
    return result


def replay_exchange(uow, exchange_id: int) -> dict:
    """Queues an outbound exchange for delivery again (after it failed, or on request)."""
    exchange = uow.repo.exchange(exchange_id)
    if exchange.direction != str(Direction.OUT):
        raise Conflict(f"exchange {exchange_id} is inbound; only outbound exchanges can be replayed")
    if UNRENDERED in (exchange.payload or {}):  # it failed before it could be rendered
        return _render_and_queue(uow, exchange)
    item = uow.repo.outbox_for_exchange(exchange.id)
    now = uow.context.clock.now()
    if item is None:
        uow.repo.insert_outbox(exchange_id=exchange.id, channel=exchange.channel,
                               message=exchange.payload, next_attempt_at=now)
    elif item.status == "pending" and item.locked_until is not None and item.locked_until > now:
        raise Conflict(f"exchange {exchange_id} is being delivered right now")
    else:
        item.status, item.attempts, item.last_error = "pending", 0, None
        item.next_attempt_at, item.locked_until, item.locked_by = now, None, None
    exchange.status, exchange.error = str(ExchangeStatus.PENDING), None
    uow.after_commit.append(uow.context.work_available.set)
    uow.commit()
    return exchange_view(exchange)


def _render_and_queue(uow, exchange: orm.Exchange) -> dict:
    # the provider this exchange was for, even if the task has moved to another group since
    task, provider = uow.repo.task(exchange.task_id), exchange.provider
    try:
        queue_delivery(uow, exchange, task, provider)
    except DeliveryError as exc:
        raise Conflict(f"exchange {exchange.id} cannot be sent yet: {exc.message}") from None
    exchange.status, exchange.error = str(ExchangeStatus.PENDING), None
    uow.commit()
    return exchange_view(exchange)
