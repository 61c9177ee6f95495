"""Per-customer overrides of a ConnectWise provider's settings (CONTRACT §7):
`PUT/GET/DELETE /customers/<cid>/providers/<pid>/settings`.

Overrides take any organisation setting plus `company` (the site's external id; default: the
site linked to the customer), `agreement` (an agreement id) and `enabled` (false: nothing of
that customer's tasks is sent). Reset (DELETE) returns to the organisation defaults; the
site link stays.
"""

from __future__ import annotations

from engine.adapters import orm
from engine.exceptions import InvalidInput
from engine.services import psa_effective
from engine.services.psa_connection import connectwise_provider
from engine.services.psa_lookups import Lookups, load
from engine.services.psa_settings import NAME_KEYS, SETTING_KEYS, _clean, merged, resolve_names

OVERRIDE_KEYS = (*SETTING_KEYS, "agreement", "enabled")


def _company(uow, lookups: Lookups, provider_id: int, value: str) -> dict:
    for item in lookups.items("companies"):
        if str(item["id"]) == value or str(item.get("identifier") or "").lower() == value.lower():
            return {"id": item["id"], "identifier": item.get("identifier") or item["name"]}
    if uow.repo.provider_site(provider_id, value) is not None:
        return psa_effective.site_reference(value)
    raise InvalidInput(f"company: the provider has no site (company) {value!r}", field="company")


def _agreement(value) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or str(value).isdigit()):
        raise InvalidInput("agreement must be an agreement id (a positive integer)",
                           field="agreement")
    if int(value) < 1:
        raise InvalidInput("agreement must be an agreement id (a positive integer)",
                           field="agreement")
    return int(value)


def _overrides(uow, provider_id: int, values: dict) -> dict:
    """Checked overrides -> {"names", "refs", "closed_status_default"?}."""
    unknown = set(values) - set(OVERRIDE_KEYS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"unknown setting {field!r}", field=field)
    plain = {k: v for k, v in values.items() if k not in ("agreement", "enabled", "company")}
    names = _clean(plain)
    lookups = load(uow, provider_id)
    org = psa_effective.for_customer(uow, provider_id, None)[0]
    scoped = {k: v for k, v in names.items() if k in NAME_KEYS}
    refs = resolve_names(lookups, scoped, org["refs"].get("board")) if scoped else {}
    data = {"names": names, "refs": refs}
    if values.get("company") is not None:
        company = str(values["company"]).strip()
        data["names"]["company"] = company
        data["refs"]["company"] = _company(uow, lookups, provider_id, company)
    if values.get("agreement") is not None:
        data["names"]["agreement"] = _agreement(values["agreement"])
    if "board" in refs:
        data["closed_status_default"] = lookups.first_closed_status(refs["board"]["id"])
    return data


def put_customer_settings(uow, customer_id: int, provider_id: int, values: dict,
                          replace: bool = False) -> dict:
    """Sets a customer's overrides at a provider: the keys given (null removes an override),
    the others stay unless `replace`; `enabled` left out stays as it was."""
    customer = uow.repo.customer(customer_id)
    provider = connectwise_provider(uow, provider_id)
    row = uow.repo.psa_customer_settings(provider.id, customer.id)
    enabled = values.get("enabled", True if row is None or replace else row.enabled)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false", field="enabled")
    given = {k: v for k, v in values.items() if k != "enabled"}
    _overrides(uow, provider.id, {k: v for k, v in given.items() if v is not None or
                                  k not in OVERRIDE_KEYS})  # the request's own faults first
    if row is not None and not replace:
        given = merged(row.data.get("names", {}), given)
    data = _overrides(uow, provider.id, {k: v for k, v in given.items() if v is not None})
    if row is None:
        row = orm.PsaCustomerSettings(provider_id=provider.id, customer_id=customer.id)
        uow.repo.add(row)
    row.data, row.enabled = data, enabled
    uow.commit()
    return customer_settings_view(uow, provider.id, customer.id)


def get_customer_settings(uow, customer_id: int, provider_id: int) -> dict:
    uow.repo.customer(customer_id)
    connectwise_provider(uow, provider_id)
    return customer_settings_view(uow, provider_id, customer_id)


def delete_customer_settings(uow, customer_id: int, provider_id: int) -> dict:
    """Back to the organisation defaults (enabled again); the site link stays."""
    uow.repo.customer(customer_id)
    connectwise_provider(uow, provider_id)
    row = uow.repo.psa_customer_settings(provider_id, customer_id)
    if row is not None:
        uow.repo.session.delete(row)
    uow.commit()
    return customer_settings_view(uow, provider_id, customer_id)


def customer_settings_view(uow, provider_id: int, customer_id: int) -> dict:
    settings, enabled = psa_effective.for_customer(uow, provider_id, customer_id)
    names = settings["names"]
    effective = {key: names.get(key) for key in SETTING_KEYS}
    effective["auto_close"] = bool(names.get("auto_close", False))
    effective["closed_status"] = settings["closed_status"]
    effective["agreement"] = names.get("agreement")
    row = uow.repo.psa_customer_settings(provider_id, customer_id)
    overrides = dict(row.data.get("names", {})) if row is not None else {}
    return {"effective": effective, "overrides": overrides, "enabled": enabled}


def overridden_customers(uow, provider_id: int) -> list[dict]:
    """Customers with overrides at a provider, for its page."""
    rows = uow.repo.psa_customer_settings_of(provider_id)
    return [{"customer_id": r.customer_id, "name": uow.repo.customer(r.customer_id).name,
             "overrides": dict(r.data.get("names", {})), "enabled": r.enabled} for r in rows]
