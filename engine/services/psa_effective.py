"""The effective ConnectWise settings of one customer: organisation defaults, that customer's
overrides, the site linked to the customer as its company; and what a request about a task
is rendered with (`render_settings`, given to the channel by the composition root)."""

from __future__ import annotations

from engine.adapters import orm
from engine.services.psa_lookups import load

BOARD_SCOPED = ("service_type", "closed_status")


def site_reference(external_id: str) -> dict:
    """A company reference from a site's external id (ConnectWise's company id)."""
    return {"id": int(external_id)} if external_id.isdigit() else {"identifier": external_id}


def _data(row) -> dict:
    return dict(row.data) if row is not None and row.data else {"names": {}, "refs": {}}


def customer_id_of(uow, ticket: orm.Ticket | None) -> int | None:
    """A ticket's customer; no customer is our own business."""
    if ticket is not None and ticket.customer_id is not None:
        return ticket.customer_id
    own = uow.repo.own_customer()
    return own.id if own is not None else None


def merged(org: dict, over: dict, site: orm.ProviderSite | None) -> dict:
    """{names, refs, closed_status, enabled-independent}: overrides win; a board override
    drops the organisation's values that belong to its board; the linked site is the
    company unless one is named."""
    over_names = over.get("names", {})
    names = {**org.get("names", {}), **over_names}
    refs = {**org.get("refs", {}), **over.get("refs", {})}
    closed_default = org.get("closed_status_default")
    if "board" in over_names:
        for key in BOARD_SCOPED:
            if key not in over_names:
                names.pop(key, None)
                refs.pop(key, None)
        closed_default = over.get("closed_status_default")
    if "company" not in over_names and site is not None:
        names["company"] = site.external_id
        refs["company"] = site_reference(site.external_id)
    return {"names": names, "refs": refs,
            "closed_status": names.get("closed_status") or closed_default}


def for_customer(uow, provider_id: int, customer_id: int | None) -> tuple[dict, bool]:
    """(merged settings, enabled) of a customer at a provider."""
    org = _data(uow.repo.psa_settings(provider_id))
    if customer_id is None:
        return merged(org, {}, None), True
    row = uow.repo.psa_customer_settings(provider_id, customer_id)
    site = uow.repo.first_site_of(provider_id, customer_id)
    return merged(org, _data(row), site), row.enabled if row is not None else True


def render_settings(uow, provider: orm.Provider, task: orm.Task) -> dict:
    """What a request about `task` is rendered with (ProviderInfo.settings): the effective
    settings of the task's customer, the task priority's mapping when it still exists."""
    settings, enabled = for_customer(uow, provider.id, customer_id_of(uow, task.ticket))
    refs = dict(settings["refs"])
    mapped = next((m.theirs for m in uow.repo.psa_mappings(provider.id, "priority")
                   if m.ours == task.priority), None)
    if mapped:
        item = load(uow, provider.id, ("priorities",)).find("priorities", mapped)
        if item is not None:  # a broken mapping falls back to the default priority
            refs["priority"] = {"id": item["id"], "name": item["name"]}
    agreement = settings["names"].get("agreement")
    if agreement:
        refs["agreement"] = {"id": int(agreement)}
    return {"connected": uow.repo.psa_connection(provider.id) is not None, "enabled": enabled,
            "auto_close": bool(settings["names"].get("auto_close", False)),
            "closed_status": settings["closed_status"], "refs": refs}
