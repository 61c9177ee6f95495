"""A provider's inbound switch and inbox (CONTRACT §7): `inbound_enabled` is false until an
admin or integration manager enables it; `inbound_group` receives the tickets it opens; its
`callback_url` carries an unguessable key. While inbound is off the queue holds everything;
enabling it drains the queue in order."""

from __future__ import annotations

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.exceptions import InvalidInput

QUEUE_JOB = "inbound-queue"
CALLBACK_PATH = "/api/v1/psa-callbacks/"
INBOUND_FIELDS = ("inbound_enabled", "inbound_group")
CALLBACK_REQUEST = "Callback registration"


def callback_url(settings, row: orm.ProviderInbound) -> str:
    return settings.public_url.rstrip("/") + CALLBACK_PATH + row.callback_key


def ensure(uow, provider: orm.Provider) -> orm.ProviderInbound:
    """The provider's inbound row (inbound off, a callback key drawn), created when missing."""
    return TwowayRepository(uow.session).inbound(provider)


def inbound_view(uow, provider: orm.Provider) -> dict:
    """The inbound keys of the provider's JSON, with the queue's counts."""
    repo = TwowayRepository(uow.session)
    row = repo.inbound(provider)
    counts = repo.item_counts(provider.id)
    return {"inbound_enabled": row.enabled,
            "inbound_group": row.group.name if row.group else None,
            "callback_url": callback_url(uow.context.settings, row),
            "inbound_queued": counts.get("pending", 0),
            "inbound_errors": counts.get("error", 0)}


def wake_queue(uow) -> None:
    """Makes the inbound-queue job due now (in the caller's transaction); the worker is woken
    after commit."""
    TwowayRepository(uow.session).job_due_now(QUEUE_JOB, uow.context.clock.now())
    uow.after_commit.append(uow.context.work_available.set)


def apply_changes(uow, provider: orm.Provider, changes: dict) -> bool:
    """Applies `inbound_enabled` / `inbound_group` of a provider PATCH (the caller commits).
    -> whether inbound was switched on by this change."""
    row = TwowayRepository(uow.session).inbound(provider)
    if changes.get("inbound_group") is not None or "inbound_group" in changes:
        name = changes.get("inbound_group")
        if name in (None, ""):
            row.group = None
        else:
            group = uow.repo.group_by_name(str(name))
            if group is None:
                raise InvalidInput(f"inbound_group: group {name!r} not found",
                                   field="inbound_group")
            row.group = group
    switched_on = False
    if "inbound_enabled" in changes:
        value = changes["inbound_enabled"]
        if not isinstance(value, bool):
            raise InvalidInput("inbound_enabled must be true or false", field="inbound_enabled")
        switched_on = value and not row.enabled
        row.enabled = value
    if row.enabled and row.group is None:
        raise InvalidInput("set inbound_group (the group whose inbox receives the provider's "
                           "tickets) before enabling inbound", field="inbound_group")
    if row.enabled:
        wake_queue(uow)  # enabling (or a new inbox) drains what the queue held, in order
    if "inbound_enabled" in changes and (switched_on or not row.enabled):
        _queue_callback(uow, provider, row, "register_callback" if row.enabled
                        else "unregister_callback")
    return switched_on


def _queue_callback(uow, provider: orm.Provider, row: orm.ProviderInbound, operation: str) -> None:
    """A PSA provider's callback is (un)registered through its channel and the outbox."""
    if provider.channel != "connectwise":
        return
    message = {"provider_id": provider.id, "operation": operation,
               "url": callback_url(uow.context.settings, row)}
    exchange_id = uow.repo.insert_exchange(
        task_id=None, provider_id=provider.id, request_type=CALLBACK_REQUEST,
        direction="Out", channel=provider.channel, status="pending", attempts=0,
        payload=message)
    uow.repo.insert_outbox(exchange_id=exchange_id, channel=provider.channel, message=message,
                           next_attempt_at=uow.context.clock.now())
    uow.after_commit.append(uow.context.work_available.set)


def set_inbound(uow, provider_id: int, changes: dict) -> dict:
    """Changes only the inbound keys of a provider -> its inbound view."""
    provider = uow.repo.provider(provider_id)
    apply_changes(uow, provider, changes)
    uow.repo.flush()
    view = inbound_view(uow, provider)
    uow.commit()
    return view


def inbound_status(uow, provider_id: int) -> dict:
    return inbound_view(uow, uow.repo.provider(provider_id))
