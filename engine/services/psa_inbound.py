"""Inbound from a PSA (ConnectWise): the callback hint, the poller, the hourly download of
sites and devices, and the nightly reconciliation. Each reads the provider's API through the
composition root and hands plain changes to the inbound queue; nothing here changes the
provider's side (that goes through the channel and the outbox)."""

from __future__ import annotations

from engine.adapters.twoway_repository import TwowayRepository
from engine.exceptions import Conflict, NotFound

POLL_JOB = "psa-poll"
SITES_JOB = "psa-sites"
RECONCILE_JOB = "psa-reconcile"


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


def _psa_provider(uow, provider_id: int):
    provider = uow.repo.provider(provider_id)
    if provider.channel != "connectwise":
        raise Conflict(f"provider {provider.name} (channel {provider.channel}) has no sites or "
                       f"devices to download: they arrive with the tickets it opens")
    return provider


def refresh_sites(core, provider_id: int) -> dict:
    """`POST /providers/<id>/refresh`: downloads the provider's sites and devices now."""
    core.run(_psa_provider, provider_id)
    raise Conflict("downloading sites and devices needs the ConnectWise connection")
