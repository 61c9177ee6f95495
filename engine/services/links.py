"""The link manager (CONTRACT §7): a provider's sites linked to our customers, its devices to
our assets. Unlinked ones come with suggestions (name similarity, rapidfuzz); a customer or
asset can be created from a site or device; unlinking a site also unlinks that customer's
tickets and assets from the provider."""

from __future__ import annotations

from rapidfuzz import fuzz, process, utils

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.exceptions import Conflict, InvalidInput, NotFound
from engine.services.customers import clean_name

SUGGESTIONS = 3
CUTOFF = 60  # rapidfuzz's 0-100 score below which a name is no suggestion


def _suggest(name: str, choices: dict[int, str]) -> list[dict]:
    found = process.extract(name, choices, scorer=fuzz.WRatio, processor=utils.default_process,
                            limit=SUGGESTIONS, score_cutoff=CUTOFF)
    return [{"id": key, "name": choice, "score": round(score)} for choice, score, key in found]


def _site(uow, provider_id: int, external_id: str) -> orm.ProviderSite:
    uow.repo.provider(provider_id)
    site = uow.repo.provider_site(provider_id, external_id)
    if site is None:
        raise NotFound(f"site {external_id!r} of provider {provider_id} not found")
    return site


def _device(uow, provider_id: int, external_id: str) -> orm.ProviderDevice:
    uow.repo.provider(provider_id)
    device = uow.repo.provider_device(provider_id, external_id)
    if device is None:
        raise NotFound(f"device {external_id!r} of provider {provider_id} not found")
    return device


def site_view(site: orm.ProviderSite, suggestions: list[dict] | None = None) -> dict:
    customer = site.customer
    return {"external_id": site.external_id, "name": site.name,
            "customer": {"id": customer.id, "name": customer.name} if customer else None,
            "suggestions": suggestions or []}


def device_view(device: orm.ProviderDevice, suggestions: list[dict] | None = None) -> dict:
    asset = device.asset
    return {"external_id": device.external_id, "name": device.name, "serial": device.serial,
            "manufacturer": device.manufacturer, "type": device.type,
            "site_external_id": device.site_external_id,
            "asset": {"id": asset.id, "name": asset.name, "customer_id": asset.customer_id}
            if asset else None,
            "suggestions": suggestions or []}


def list_sites(uow, provider_id: int) -> list[dict]:
    """The provider's sites, unlinked first, each unlinked one with suggested customers."""
    uow.repo.provider(provider_id)
    sites = uow.repo.provider_sites(provider_id)
    names = {c.id: c.name for c in uow.repo.customers(limit=5000)}
    views = [site_view(s, None if s.customer else _suggest(s.name, names)) for s in sites]
    return sorted(views, key=lambda v: (v["customer"] is not None, v["name"].lower()))


def _asset_choices(uow, device: orm.ProviderDevice) -> dict[int, str]:
    site = (uow.repo.provider_site(device.provider_id, device.site_external_id)
            if device.site_external_id else None)
    assets = (uow.repo.assets_of(site.customer_id) if site and site.customer_id
              else TwowayRepository(uow.session).all_assets())
    return {a.id: a.name + (f" ({a.serial})" if a.serial else "") for a in assets}


def _device_suggestions(uow, device: orm.ProviderDevice, cache: dict) -> list[dict]:
    key = device.site_external_id
    if key not in cache:
        cache[key] = _asset_choices(uow, device)
    choices = cache[key]
    if device.serial:  # the same serial is the best suggestion there is
        same = [i for i, label in choices.items() if label.endswith(f"({device.serial})")]
        if same:
            return [{"id": i, "name": choices[i], "score": 100} for i in same[:SUGGESTIONS]]
    return _suggest(device.name, choices)


def list_devices(uow, provider_id: int) -> list[dict]:
    """The provider's devices, unlinked first, each unlinked one with suggested assets."""
    uow.repo.provider(provider_id)
    cache: dict = {}
    views = [device_view(d, None if d.asset else _device_suggestions(uow, d, cache))
             for d in uow.repo.provider_devices(provider_id)]
    return sorted(views, key=lambda v: (v["asset"] is not None, v["name"].lower()))


def link_site(uow, provider_id: int, external_id: str, customer_id: int | None = None,
              create: bool = False) -> dict:
    """Links a site to a customer, or to a new customer named as the site (`create`)."""
    site = _site(uow, provider_id, external_id)
    if create:
        name = clean_name(site.name[:200])
        if uow.repo.customer_by_name(name) is not None:
            raise Conflict(f"a customer named {name!r} exists already: link the site to it")
        customer = orm.Customer(name=name, own=False, notes="")
        uow.repo.add(customer)
    elif customer_id is not None:
        try:
            customer = uow.repo.customer(customer_id)
        except NotFound:
            raise InvalidInput(f"customer_id: customer {customer_id} not found",
                               field="customer_id") from None
    else:
        raise InvalidInput("send customer_id, or create: true", field="customer_id")
    site.customer = customer
    uow.repo.flush()
    view = site_view(site)
    uow.commit()
    return view


def unlink_site(uow, provider_id: int, external_id: str) -> dict:
    """Unlinks a site; the customer's assets and tickets are unlinked from the provider too."""
    site = _site(uow, provider_id, external_id)
    unlinked = {"assets": 0, "tickets": 0}
    if site.customer_id is not None:
        unlinked = TwowayRepository(uow.session).unlink_customer(provider_id, site.customer_id)
        site.customer = None
    uow.repo.flush()
    view = {**site_view(site), "unlinked": unlinked}
    uow.commit()
    return view


def _new_asset(uow, device: orm.ProviderDevice) -> orm.Asset:
    site = (uow.repo.provider_site(device.provider_id, device.site_external_id)
            if device.site_external_id else None)
    if site is None or site.customer_id is None:
        raise Conflict(f"device {device.external_id}'s site is not linked to a customer: link "
                       f"the site first")
    other = [f"Type: {device.type}"] if device.type else []
    other += [f"{key}: {value}" for key, value in sorted((device.details or {}).items())
              if value not in (None, "", [], {})]
    asset = orm.Asset(customer_id=site.customer_id, name=clean_name(device.name[:200]),
                      serial=(device.serial or None), manufacturer=(device.manufacturer or None),
                      notes="\n".join(other))
    uow.repo.add(asset)
    return asset


def link_device(uow, provider_id: int, external_id: str, asset_id: int | None = None,
                create: bool = False) -> dict:
    """Links a device to an asset, or to a new asset of the site's customer (`create`: name,
    serial and manufacturer copied, other details into its notes)."""
    device = _device(uow, provider_id, external_id)
    if create:
        asset = _new_asset(uow, device)
    elif asset_id is not None:
        asset = uow.session.get(orm.Asset, asset_id)
        if asset is None:
            raise InvalidInput(f"asset_id: asset {asset_id} not found", field="asset_id")
    else:
        raise InvalidInput("send asset_id, or create: true", field="asset_id")
    device.asset = asset
    uow.repo.flush()
    view = device_view(device)
    uow.commit()
    return view


def unlink_device(uow, provider_id: int, external_id: str) -> dict:
    device = _device(uow, provider_id, external_id)
    device.asset = None
    uow.repo.flush()
    view = device_view(device)
    uow.commit()
    return view


def links_page(uow, provider_id: int, manager: bool) -> dict:
    """What the link manager page shows; choices and error reports only for managers."""
    from engine.services import inbound_settings, psa_reports
    from engine.services.views import provider_view

    provider = uow.repo.provider(provider_id)
    page = {"provider": provider_view(provider, uow.context.settings.public_url),
            "inbound": inbound_settings.inbound_view(uow, provider),
            "sites": list_sites(uow, provider_id), "devices": list_devices(uow, provider_id),
            "customers": [], "assets": [], "groups": [], "errors": []}
    if manager:
        page["customers"] = [{"id": c.id, "name": c.name} for c in uow.repo.customers(limit=5000)]
        page["assets"] = [{"id": a.id, "name": a.name, "serial": a.serial}
                          for a in TwowayRepository(uow.session).all_assets()]
        page["groups"] = [g.name for g in uow.repo.groups()]
        page["errors"] = psa_reports.provider_errors(uow, provider_id, limit=20)
    return page


def providers_overview(uow) -> list[dict]:
    """Every provider with its sites and devices linked / not linked, for the index page."""
    rows = []
    for provider in uow.repo.providers():
        sites = uow.repo.provider_sites(provider.id)
        devices = uow.repo.provider_devices(provider.id)
        rows.append({"id": provider.id, "name": provider.name, "channel": provider.channel,
                     "inbound_enabled": bool(provider.inbound and provider.inbound.enabled),
                     "sites": len(sites), "unlinked_sites": sum(1 for s in sites if not s.customer_id),
                     "devices": len(devices),
                     "unlinked_devices": sum(1 for d in devices if not d.asset_id)})
    return rows
