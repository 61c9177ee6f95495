"""The workers' periodic jobs, listed in one place. `Core` reads this list; a worker pass
runs whichever are due (engine.services.schedule keeps one run at a time across workers)."""

from __future__ import annotations

from datetime import timedelta

from engine.exceptions import InvalidInput
from engine.services import (
    housekeeping,
    inbound_queue,
    psa_agreements,
    psa_inbound,
    psa_lookups,
)
from engine.services.idempotency import purge_expired
from engine.services.provider_auth import purge_nonces
from engine.services.schedule import Job, daily_at, every
from engine.services.sla_breaches import check_breaches

# Longer than any accepted Created can lie in the future (WS-Security allows 5 minutes of skew).
NONCE_RETENTION = timedelta(minutes=15)


def _purge_nonces(core) -> dict:
    removed = core.run(purge_nonces, core.clock.now() - NONCE_RETENTION)
    return {"removed": removed}


def _purge_idempotency_records(core) -> dict:
    return {"removed": core.run(purge_expired, core.clock.now())}


def _seconds(settings, name: str, default: float) -> float:
    text = (settings.extra.get(name) or "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1
    if value <= 0:
        raise InvalidInput(f"{name} must be a number of seconds above 0, got {text!r}", field=name)
    return value


def _instance_purge(days: int) -> Job:
    def run(core) -> dict:
        before = housekeeping.cutoff(core.clock.now(), days)
        return {"purged": housekeeping.purge_all(core, before)}
    return Job("purge-instances", run, daily_at(3, 30))


def engine_jobs(settings) -> list[Job]:
    """Every periodic job of the engine, given the settings that tune them."""
    jobs = [
        Job("purge-nonces", _purge_nonces, every(600)),
        Job("sla-breaches", check_breaches, every(60)),  # provider SLA targets missed
        # ConnectWise look-ups for drop-downs and checks (also fetched when settings are saved)
        Job("psa-lookups", psa_lookups.refresh_all, every(3600), start_now=False),
        # agreement quantities from asset counts, nightly at LIAISON_PSA_AGREEMENT_SYNC_HOUR (UTC)
        Job("psa-agreement-sync", psa_agreements.sync_all,
            daily_at(settings.psa_agreement_sync_hour), start_now=False,
            lease=timedelta(hours=1)),
        Job("purge-idempotency-records", _purge_idempotency_records, every(3600)),
        # providers' changes kept in the inbound queue (made due at once when items arrive)
        Job("inbound-queue", inbound_queue.drain_job, every(15)),
        # PSA providers (ConnectWise): polling alone is enough; a callback makes it due now
        Job(psa_inbound.POLL_JOB, psa_inbound.poll_job,
            every(_seconds(settings, "LIAISON_PSA_POLL_SECONDS", 60))),
        Job(psa_inbound.SITES_JOB, psa_inbound.sites_job, every(3600)),
        Job(psa_inbound.RECONCILE_JOB, psa_inbound.reconcile_job, daily_at(2, 30),
            lease=timedelta(hours=1), start_now=False),
    ]
    days = settings.extra.get("LIAISON_PURGE_INSTANCES_DAYS", "").strip()
    if days.isdigit():  # off unless set: completed instances are kept for ever by default
        jobs.append(_instance_purge(int(days)))
    return jobs
