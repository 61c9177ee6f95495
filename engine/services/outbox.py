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
    """Leases due outbox items to this worker and commits; returns what to deliver.

    The lease is short and renewed by the worker's heartbeat (engine.services.leases): the
    rows of a worker that died are due again one lease length later."""
    now = uow.context.clock.now()
    lease = lease_length(uow.context.settings)
    claimed = []
    for item_id in uow.repo.due_outbox_ids(now, limit):
        if uow.repo.lease_outbox(item_id, worker, now, lease):
            item = uow.repo.outbox_item(item_id)
            claimed.append({"id": item.id, "exchange_id": item.exchange_id, "channel": item.channel,
                            "attempts": item.attempts, "message": item.message})
    uow.commit()
    return claimed


def _backoff(settings, attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.delivery_backoff_seconds * (2 ** (attempts - 1)), 3600))


def record_outcome(uow, item_id: int, worker: str, result: dict | None,
                   error: DeliveryError | None) -> None:
    """Stores the outcome of one delivery attempt on the outbox item and its exchange."""
    item = uow.repo.outbox_item(item_id)
    if item is None or item.locked_by != worker or item.status != "pending":
        return  # the lease was lost (taken over after expiry); the new holder records
    settings, now = uow.context.settings, uow.context.clock.now()
    exchange = uow.repo.exchange(item.exchange_id) if item.exchange_id else None
    item.attempts += 1
    item.locked_until, item.locked_by = None, None
    if error is None:
        item.status, item.last_error = "done", None
        if exchange is not None:
            exchange.status, exchange.error = str(ExchangeStatus.DELIVERED), None
            exchange.result = result or {}
    else:
        final = not error.retryable or item.attempts >= settings.delivery_attempts
        item.last_error = error.message
        item.status = "failed" if final else "pending"
        # never sooner than the provider asked (HTTP 429 Retry-After)
        wait = max(_backoff(settings, item.attempts), timedelta(seconds=error.retry_after or 0))
        item.next_attempt_at = now + wait
        if exchange is not None:
            exchange.error = error.message
            exchange.status = str(ExchangeStatus.FAILED if final else ExchangeStatus.PENDING)
    if exchange is not None:
        exchange.attempts = item.attempts
        if error is None and (result or {}).get("created") and result.get("external_reference"):
            _acknowledge_reference(uow, exchange, str(result["external_reference"]))
    uow.commit()


def _acknowledge_reference(uow, exchange: orm.Exchange, reference: str) -> None:
    """A delivery that created the provider's record (a ConnectWise ticket; the result says
    `created`: a SOAP answer's reference is not one, its provider acknowledges) names its id:
    the task gets it as its reference as if the provider had acknowledged (Acknowledgement/In,
    delivered, on the exchange's channel), in this same transaction. Idempotent by exchange."""
    if exchange.task_id is None:
        return
    source = inbound.Inbound(provider=exchange.provider.name if exchange.provider else None,
                             channel=exchange.channel, request_id=f"delivered-{exchange.id}")
    try:
        inbound.acknowledge_external(uow, exchange.task_id, reference, source)
    except LiaisonError as exc:  # checked before anything is written: the outcome still counts
        log.warning("reference %s of exchange %s not applied to task %s: %s", reference,
                    exchange.id, exchange.task_id, exc.message)
        exchange.result = {**(exchange.result or {}), "reference_not_applied": exc.message}


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
