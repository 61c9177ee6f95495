"""Customers (accounts) and their assets: create, edit, merge; our own business (CONTRACT §7).

A ticket names its customer; an unknown name creates it. A ticket without a customer belongs
to our own business, the one customer flagged `own` (named by LIAISON_OWN_CUSTOMER).
"""

from __future__ import annotations

from engine.adapters import orm
from engine.exceptions import Conflict, InvalidInput, NotFound
from engine.services.views import iso

DEFAULT_OWN = "Own business"
NAME_MAX = 200
NOTES_MAX = 100_000
ASSET_DETAILS = {"serial": 200, "manufacturer": 200, "type": 100}  # optional, with their limits


def customer_view(customer: orm.Customer, asset_count: int = 0) -> dict:
    return {"id": customer.id, "name": customer.name, "own": customer.own,
            "notes": customer.notes or "", "asset_count": asset_count}


def asset_view(asset: orm.Asset) -> dict:
    return {"id": asset.id, "customer_id": asset.customer_id, "name": asset.name,
            "serial": asset.serial, "manufacturer": asset.manufacturer, "type": asset.type,
            "notes": asset.notes or "", "created_at": iso(asset.created_at)}


def clean_name(value, field: str = "name", limit: int = NAME_MAX) -> str:
    """A name trimmed of surrounding blanks, 1 to `limit` characters."""
    name = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(name) <= limit:
        raise InvalidInput(f"{field}: 1-{limit} characters (blanks around it do not count)",
                           field=field)
    return name


def _optional(value, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters", field=field)
    return value.strip() or None


def _notes(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > NOTES_MAX:
        raise InvalidInput(f"notes: at most {NOTES_MAX} characters", field="notes")
    return value.strip()


def _view(uow, customer: orm.Customer) -> dict:
    return customer_view(customer, uow.repo.asset_counts([customer.id]).get(customer.id, 0))


def _free_name(uow, name: str, keep: orm.Customer | None = None) -> str:
    existing = uow.repo.customer_by_name(name)
    if existing is not None and existing is not keep:
        raise Conflict(f"a customer named {existing.name!r} already exists")
    return name


# -- tickets name their customer ------------------------------------------------------------

def customer_of_ticket(uow, name: str | None) -> orm.Customer | None:
    """The customer a ticket names, created when unknown; no name: our own business (CONTRACT
    §7: a ticket's customer names a customer; None only before `init-db` created ours)."""
    if name is None or not name.strip():
        return uow.repo.own_customer()
    return uow.repo.customer_named(clean_name(name, "customer"))


def set_ticket_customer(uow, ticket: orm.Ticket, name: str | None) -> None:
    """Makes `name` the ticket's customer (created when unknown). The caller commits."""
    ticket.customer = customer_of_ticket(uow, name)


# -- our own business -------------------------------------------------------------------------

def own_customer_name(settings) -> str:
    return (settings.extra.get("LIAISON_OWN_CUSTOMER") or "").strip() or DEFAULT_OWN


def ensure_own_customer(uow) -> dict:
    """Creates our own business once (idempotent), named by LIAISON_OWN_CUSTOMER; follows a
    changed setting by renaming it. A customer already of that name becomes our own. Tickets
    stored without a customer (by versions that allowed it) become our own business's."""
    name = clean_name(own_customer_name(uow.context.settings), "LIAISON_OWN_CUSTOMER")
    own = uow.repo.own_customer()
    namesake = uow.repo.customer_by_name(name)
    if own is None and namesake is not None:
        namesake.own = True
        own = namesake
    elif own is None:
        own = orm.Customer(name=name, own=True, notes="")
        uow.repo.add(own)
    elif own.name != name:
        if namesake is not None and namesake is not own:
            raise Conflict(f"LIAISON_OWN_CUSTOMER is {name!r}, but another customer has that "
                           f"name: rename it or merge it into {own.name!r} first")
        own.name = name
    uow.repo.flush()
    uow.repo.give_tickets_without_customer_to(own.id)  # a ticket's customer names a customer
    uow.commit()
    return _view(uow, own)


# -- customers ----------------------------------------------------------------------------------

def list_customers(uow, search: str | None = None) -> list[dict]:
    """Customers by name, our own business first; `search` matches part of the name."""
    rows = uow.repo.customers((search or "").strip() or None)
    counts = uow.repo.asset_counts([c.id for c in rows])
    return [customer_view(c, counts.get(c.id, 0)) for c in rows]


def get_customer(uow, customer_id: int) -> dict:
    return _view(uow, uow.repo.customer(customer_id))


def create_customer(uow, name: str, notes: str | None = None) -> dict:
    """Adds a customer; its name is unique (whatever its case)."""
    name = _free_name(uow, clean_name(name))
    customer = uow.repo.new_customer(name, _notes(notes))
    if customer is None:  # another writer created it since _free_name looked (PostgreSQL)
        raise Conflict(f"a customer named {name!r} already exists")
    uow.commit()
    return customer_view(customer)


def update_customer(uow, customer_id: int, name: str | None = None,
                    notes: str | None = None) -> dict:
    """Renames a customer or changes its notes (fields left out keep their value)."""
    customer = uow.repo.customer(customer_id)
    if name is not None:
        new_name = _free_name(uow, clean_name(name), keep=customer)
        if customer.own and new_name != customer.name:
            raise Conflict("our own business is named by the setting LIAISON_OWN_CUSTOMER")
        customer.name = new_name
    if notes is not None:
        customer.notes = _notes(notes)
    uow.repo.flush()
    uow.commit()
    return _view(uow, customer)


def merge_customers(uow, customer_id: int, into: int) -> dict:
    """Merges a customer into another: its tickets, assets and site links move, its notes are
    appended, and it is deleted. Our own business cannot be merged away. -> the one kept."""
    source = uow.repo.customer(customer_id)
    if into == customer_id:
        raise InvalidInput("a customer cannot be merged into itself", field="into")
    try:
        target = uow.repo.customer(into)
    except NotFound:
        raise InvalidInput(f"into: customer {into} not found", field="into") from None
    if source.own:
        raise Conflict("our own business cannot be merged into another customer")
    moved = uow.repo.move_customer(source.id, target.id)
    if source.notes:
        target.notes = "\n\n".join(n for n in (target.notes, f"[{source.name}] {source.notes}")
                                   if n)
    uow.repo.delete(source)
    uow.repo.flush()
    uow.commit()
    return {**_view(uow, target), "moved": moved}


# -- assets ---------------------------------------------------------------------------------------

def _asset_values(data: dict) -> dict:
    values = {}
    if "name" in data:
        values["name"] = clean_name(data["name"])
    for field, limit in ASSET_DETAILS.items():
        if field in data:
            values[field] = _optional(data[field], field, limit)
    if "notes" in data:
        values["notes"] = _notes(data["notes"])
    return values


def list_assets(uow, customer_id: int) -> list[dict]:
    uow.repo.customer(customer_id)  # 404 for an unknown customer
    return [asset_view(a) for a in uow.repo.assets_of(customer_id)]


def create_asset(uow, customer_id: int, name: str, **details) -> dict:
    """Adds an asset (`serial`, `manufacturer`, `type`, `notes` optional) to a customer."""
    customer = uow.repo.customer(customer_id)
    values = {"notes": "", **_asset_values({**details, "name": name})}
    asset = orm.Asset(customer_id=customer.id, **values)
    uow.repo.add(asset)
    uow.repo.flush()
    uow.commit()
    return asset_view(asset)


def update_asset(uow, customer_id: int, asset_id: int, **changes) -> dict:
    """Changes an asset's fields; those left out keep their value."""
    asset = uow.repo.asset(customer_id, asset_id)
    for field, value in _asset_values(changes).items():
        setattr(asset, field, value)
    uow.repo.flush()
    uow.commit()
    return asset_view(asset)


def delete_asset(uow, customer_id: int, asset_id: int) -> None:
    """Deletes an asset; a provider's device linked to it is unlinked."""
    uow.repo.delete(uow.repo.asset(customer_id, asset_id))
    uow.commit()


def customer_page(uow, customer_id: int) -> dict:
    """What the customer's web page shows: the customer, its assets, the merge targets."""
    customer = uow.repo.customer(customer_id)
    assets = uow.repo.assets_of(customer.id)
    others = [{"id": c.id, "name": c.name} for c in uow.repo.customers() if c.id != customer.id]
    return {"customer": customer_view(customer, len(assets)),
            "assets": [asset_view(a) for a in assets], "others": others}
