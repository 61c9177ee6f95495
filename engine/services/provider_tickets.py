"""Tickets a provider opened (CONTRACT §7): a local ticket and a task in the provider's
`inbound_group`, whatever the channel (SOAP `CreateExternalTicket`, ConnectWise polling).

The customer is the one linked to the ticket's site; an unlinked site gets a customer named
`[<provider> AUTO CREATED] <site>` (and is linked to it, so later tickets of that site find
it); no site means our own business. A device linked to an asset names it on the task; an
unlinked device's details go into the description. No process starts: the ticket is already
at the provider. A *New Ticket / In* exchange and a history note record it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.domain.events import Direction, ExchangeStatus, RequestType
from engine.exceptions import InvalidInput, NotAuthorized

TITLE_MAX = 500
REFERENCE_MAX = 100
TEXT_MAX = 100_000
NAME_MAX = 200  # a customer's name
OPENED = "opened"  # the change key of a ticket's opening in the inbound queue


@dataclass(frozen=True)
class NewTicket:
    """A ticket as the provider opened it, in plain values."""

    reference: str
    title: str
    description: str = ""
    site: str | None = None  # the site's (company's) external id
    site_name: str | None = None
    device: str | None = None  # the device's (configuration's) external id
    device_details: dict = field(default_factory=dict)  # name, serial, manufacturer, type
    created_at: str | None = None  # the provider's creation time, as it gave it
    status: str | None = None

    def as_payload(self) -> dict:
        return {"reference": self.reference, "title": self.title,
                "description": self.description, "site": self.site,
                "site_name": self.site_name, "device": self.device,
                "device_details": dict(self.device_details), "created_at": self.created_at,
                "status": self.status}

    @classmethod
    def from_payload(cls, payload: dict) -> NewTicket:
        return cls(**{key: payload.get(key) for key in (
            "reference", "title", "description", "site", "site_name", "device",
            "created_at", "status")}, device_details=payload.get("device_details") or {})


def _clip(value: str | None, limit: int) -> str:
    value = (value or "").strip()
    return value if len(value) <= limit else value[:limit - 1] + "…"


def checked(ticket: NewTicket) -> NewTicket:
    """The ticket with its values trimmed; a missing reference or title is refused."""
    reference = (ticket.reference or "").strip()
    if not reference or len(reference) > REFERENCE_MAX:
        raise InvalidInput(f"externalReference: 1-{REFERENCE_MAX} characters",
                           field="externalReference")
    title = " ".join((ticket.title or "").split())
    if not title:
        raise InvalidInput("title must not be empty", field="title")
    site = (ticket.site or "").strip()[:REFERENCE_MAX] or None
    device = (ticket.device or "").strip()[:REFERENCE_MAX] or None
    return NewTicket(reference=reference, title=_clip(title, TITLE_MAX),
                     description=_clip(ticket.description, TEXT_MAX), site=site,
                     site_name=_clip(ticket.site_name, 300) or None, device=device,
                     device_details=dict(ticket.device_details or {}),
                     created_at=ticket.created_at, status=ticket.status)


def auto_created_name(provider: orm.Provider, site_name: str) -> str:
    prefix = f"[{provider.name} AUTO CREATED] "
    return prefix + _clip(site_name, NAME_MAX - len(prefix))


@dataclass
class Known:
    """A batch's rows read beforehand, each kind with one statement (`Known.read`): the sites,
    devices and ticket links its tickets name; rows made while applying them join it."""

    sites: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    own: list = field(default_factory=list)  # our own business, once a ticket without site needs it

    @classmethod
    def read(cls, uow, provider_id: int, tickets: list[NewTicket]) -> Known:
        repo = TwowayRepository(uow.session)
        return cls(sites=repo.sites_by_refs(provider_id, {_site_ref(t) for t in tickets
                                                          if _site_ref(t)}),
                   devices=repo.devices_by_refs(provider_id, {t.device for t in tickets
                                                              if t.device}),
                   links={row.external_id: row for row in repo.provider_tickets_by_refs(
                       provider_id, [t.reference for t in tickets])})

    def own_customer(self, uow) -> orm.Customer | None:
        """Our own business (the customer of tickets without a site), read once a batch."""
        if not self.own:
            self.own.append(uow.repo.own_customer())
        return self.own[0]


def _site_ref(ticket: NewTicket) -> str | None:
    return ticket.site or (ticket.site_name or "")[:REFERENCE_MAX] or None


def _customer(uow, provider: orm.Provider, ticket: NewTicket,
              known: Known | None) -> orm.Customer | None:
    """The customer linked to the ticket's site; an unlinked site gets (and is linked to) its
    AUTO CREATED customer; no site: our own business."""
    external_id = _site_ref(ticket)
    if external_id is None:
        return known.own_customer(uow) if known is not None else uow.repo.own_customer()
    repo = TwowayRepository(uow.session)
    site = (known.sites.get(external_id) if known is not None
            else uow.repo.provider_site(provider.id, external_id))
    if site is None:
        site = repo.upsert_site(provider.id, external_id, ticket.site_name or external_id, {},
                                uow.context.clock.now(), known_absent=True)
        if known is not None:
            known.sites[external_id] = site
    if site.customer is None:
        # a site never linked, or linked to a customer since removed (the link was cleared)
        site.customer = uow.repo.customer_named(auto_created_name(provider, site.name))
    return site.customer


def _device_lines(uow, provider: orm.Provider, ticket: NewTicket,
                  known: Known | None) -> list[str]:
    """What the task says about the ticket's device."""
    if not ticket.device:
        return []
    details = ticket.device_details or {}
    device = (known.devices.get(ticket.device) if known is not None
              else uow.repo.provider_device(provider.id, ticket.device))
    if device is None:
        values = {"name": _clip(details.get("name") or ticket.device, 300),
                  "serial": _clip(details.get("serial"), 200) or None,
                  "manufacturer": _clip(details.get("manufacturer"), 200) or None,
                  "type": _clip(details.get("type"), 100) or None,
                  "site_external_id": ticket.site, "details": {}}
        device = TwowayRepository(uow.session).upsert_device(
            provider.id, ticket.device, values, uow.context.clock.now(), known_absent=True)
        if known is not None:
            known.devices[ticket.device] = device
    if device.asset is not None:
        asset = device.asset
        serial = f", serial {asset.serial}" if asset.serial else ""
        return [f"Asset: {asset.name}{serial} (asset #{asset.id})"]
    parts = [f"Device: {device.name}"]
    parts += [f"{label}: {value}" for label, value in (("Serial", device.serial),
                                                       ("Manufacturer", device.manufacturer))
              if value]
    return [" · ".join(parts) + f" (device {ticket.device} at {provider.name}, not linked)"]


def result_of(task_id: int, reference: str, status: str) -> dict:
    return {"taskId": task_id, "externalReference": reference,
            "requestType": str(RequestType.NEW_TICKET), "status": status}


def open_provider_ticket(uow, provider: orm.Provider, group: orm.Group, ticket: NewTicket,
                         channel: str, known: Known | None = None) -> dict:
    """Opens the local ticket and task of a provider's ticket (the caller commits) -> result.
    `known`: the rows a batch read beforehand (else each is looked up here)."""
    customer = _customer(uow, provider, ticket, known)
    description = "\n\n".join(part for part in (
        ticket.description, "\n".join(_device_lines(uow, provider, ticket, known))) if part)
    repo = TwowayRepository(uow.session)
    # append-only here (write-path §2): the ticket and task are new rows nobody reads back
    ticket_id = repo.insert_row(orm.Ticket, title=ticket.title, description=description,
                                customer_id=customer.id if customer else None)
    task_id = repo.insert_row(orm.Task, ticket_id=ticket_id, title=ticket.title,
                              description=description, priority="normal", status="open",
                              group_id=group.id, external_reference=ticket.reference,
                              solution_pending=False)
    when = ticket.created_at or "an unknown time"
    uow.repo.insert_note(task_id=task_id, kind="external_ticket", author=provider.name,
                         text=f"Opened by {provider.name} at {when} as ticket "
                              f"{ticket.reference} ({channel}).")
    result = result_of(task_id, ticket.reference, "accepted")
    uow.repo.insert_exchange(
        task_id=task_id, provider_id=provider.id, request_type=str(RequestType.NEW_TICKET),
        direction=str(Direction.IN), channel=channel, status=str(ExchangeStatus.DELIVERED),
        attempts=1, payload=ticket.as_payload(), result=result,
        idempotency_key=f"new-ticket:{ticket.reference}")
    link = (known.links.get(ticket.reference) if known is not None
            else repo.provider_ticket(provider.id, ticket.reference))
    if link is None:  # SOAP: no poller has seen it before
        repo.insert_row(orm.ProviderTicket, provider_id=provider.id,
                        external_id=ticket.reference, task_id=task_id, origin="provider",
                        linked=True, status=ticket.status, closed=False, last_note_id=0)
    else:
        link.task_id = task_id
    return result


def previous_result(uow, provider: orm.Provider, reference: str) -> dict | None:
    """The answer given when this ticket was first received, marked duplicate."""
    exchange = uow.repo.exchange_by_key(provider.id, f"new-ticket:{reference}")
    if exchange is not None:
        return {**exchange.result, "status": "duplicate"}
    item = TwowayRepository(uow.session).item_by_key(provider.id, reference, OPENED)
    if item is not None:
        return result_of(item.task_id or 0, reference, "duplicate")
    return None


def create_external_ticket(uow, provider_name: str, ticket: NewTicket,
                           channel: str = "soap") -> dict:
    """SOAP `CreateExternalTicket`: queues the provider's ticket and, while inbound is enabled
    (with an inbox group), opens it at once -> `{taskId, externalReference, requestType,
    status}`. While inbound is off the ticket is kept (taskId 0) and opened when enabled."""
    ticket = checked(ticket)
    provider = uow.repo.provider_by_name(provider_name)
    if provider is None:
        raise NotAuthorized(f"unknown provider {provider_name}")
    repeated = previous_result(uow, provider, ticket.reference)
    if repeated is not None:
        return repeated
    repo, now = TwowayRepository(uow.session), uow.context.clock.now()
    row = repo.inbound(provider)
    item = dict(provider_id=provider.id, ticket_ref=ticket.reference, change_key=OPENED,
                kind="new_ticket", source="soap", payload={**ticket.as_payload(),
                                                           "channel": channel},
                received_at=now)
    if not row.enabled or row.group is None:  # kept in the queue until inbound is enabled
        repo.insert_item(**item, status="pending", attempts=0)
        uow.commit()
        return result_of(0, ticket.reference, "accepted")
    result = open_provider_ticket(uow, provider, row.group, ticket, channel)
    repo.insert_item(**item, status="done", attempts=1, task_id=result["taskId"],
                     processed_at=now)
    uow.commit()
    return result
