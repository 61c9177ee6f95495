"""What operators read about a provider: the provider itself, its recent failures (failed or
retrying exchanges, agreement-sync errors)."""

from __future__ import annotations

from engine.services.views import iso, provider_view

RECENT = 200


def provider_detail(uow, provider_id: int) -> dict:
    return provider_view(uow.repo.provider(provider_id), uow.context.settings.public_url)


def provider_errors(uow, provider_id: int, limit: int = 50) -> list[dict]:
    """Recent failures, newest first: `[{at, operation, status, message, exchange_id}]`."""
    uow.repo.provider(provider_id)
    errors = [{"at": iso(e.updated_at or e.created_at), "operation": e.request_type,
               "status": e.status, "message": e.error, "exchange_id": e.id}
              for e in uow.repo.exchanges(filters={"provider_id": provider_id}, limit=RECENT)
              if e.error]
    for run in uow.repo.psa_sync_runs(provider_id):
        errors.extend({"at": iso(run.finished_at), "operation": "Agreement sync",
                       "status": "failed", "message": message, "exchange_id": None}
                      for message in run.errors or [])
    # inbound items that could not be applied (the two-way link), replayable one by one
    from engine.services.inbound_queue import inbound_errors
    errors += inbound_errors(uow, provider_id, limit)
    errors.sort(key=lambda e: e["at"] or "", reverse=True)
    return errors[:limit]


def provider_page(uow, provider_id: int) -> dict:
    """Everything the provider's page shows for a ConnectWise provider."""
    from engine.services import psa_customers, psa_lookups, psa_settings

    provider = uow.repo.provider(provider_id)
    lookups = psa_lookups.load(uow, provider_id)
    settings = psa_settings.organisation_settings(uow, provider_id)
    return {"provider": provider_view(provider, uow.context.settings.public_url),
            "lookups": lookups.view(),
            "settings": psa_settings.settings_view(settings),
            "broken": psa_settings.broken_settings(lookups, settings),
            "mappings": psa_settings.mapping_rows(uow, provider_id),
            "task_priorities": psa_settings.TASK_PRIORITIES,
            "customers": [{"id": c.id, "name": c.name} for c in uow.repo.customers()],
            "overridden": psa_customers.overridden_customers(uow, provider_id),
            "errors": provider_errors(uow, provider_id, limit=20)}


def customer_page(uow, provider_id: int, customer_id: int) -> dict:
    """A customer's settings at a ConnectWise provider, with the lists to choose from."""
    from engine.services import psa_customers, psa_lookups, psa_settings

    customer = uow.repo.customer(customer_id)
    return {"provider": provider_view(uow.repo.provider(provider_id),
                                      uow.context.settings.public_url),
            "customer": {"id": customer.id, "name": customer.name, "own": customer.own},
            "lookups": psa_lookups.load(uow, provider_id).view(),
            "organisation": psa_settings.get_settings(uow, provider_id),
            "settings": psa_customers.get_customer_settings(uow, customer_id, provider_id)}
