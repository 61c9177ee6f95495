"""What a ConnectWise offers for drop-downs and checks: boards with their statuses and types,
priorities, contacts, companies and products. Fetched from the API, cached in `psa_lookups`,
refreshed hourly (engine.jobs) and on demand."""

from __future__ import annotations

from engine.adapters.connectwise_client import ApiError, ConnectWiseClient
from engine.exceptions import Conflict
from engine.services import psa_connection
from engine.services.views import iso

MAX_BOARDS = 100
MAX_RECORDS = 5000


def _named(records: list[dict], *extra: str) -> list[dict]:
    return [{"id": r["id"], "name": r.get("name") or "", **{k: r.get(k) for k in extra}}
            for r in records]


def fetch(client: ConnectWiseClient) -> list[dict]:
    """Every look-up of one ConnectWise, as rows of psa_lookups."""
    boards = client.get_all("/service/boards", conditions="inactiveFlag=false",
                            fields="id,name", limit=MAX_BOARDS)
    rows = [{"kind": "boards", "scope": "", "items": _named(boards)}]
    for board in boards:
        path = f"/service/boards/{int(board['id'])}"
        statuses = client.get_all(path + "/statuses", fields="id,name,closedStatus,defaultFlag,"
                                  "sortOrder,inactive")
        statuses = sorted((s for s in statuses if not s.get("inactive")),
                          key=lambda s: (s.get("sortOrder") or 0, s["id"]))
        types = client.get_all(path + "/types", fields="id,name,inactiveFlag")
        rows.append({"kind": "statuses", "scope": str(board["id"]),
                     "items": _named(statuses, "closedStatus", "defaultFlag")})
        rows.append({"kind": "types", "scope": str(board["id"]),
                     "items": _named([t for t in types if not t.get("inactiveFlag")])})
    priorities = client.get_all("/service/priorities", fields="id,name,sortOrder")
    rows.append({"kind": "priorities", "scope": "", "items": _named(priorities)})
    contacts = client.get_all("/company/contacts", fields="id,firstName,lastName,company",
                              limit=MAX_RECORDS)
    rows.append({"kind": "contacts", "scope": "", "items": [
        {"id": c["id"], "name": f"{c.get('firstName') or ''} {c.get('lastName') or ''}".strip(),
         "company": (c.get("company") or {}).get("id")} for c in contacts]})
    companies = client.get_all("/company/companies", fields="id,identifier,name",
                               limit=MAX_RECORDS)
    rows.append({"kind": "companies", "scope": "", "items": _named(companies, "identifier")})
    products = client.get_all("/procurement/catalog", fields="id,identifier,description",
                              limit=MAX_RECORDS)
    rows.append({"kind": "products", "scope": "", "items": [
        {"id": p["id"], "name": p.get("identifier") or "", "description": p.get("description")}
        for p in products]})
    return rows


def store(uow, provider_id: int, rows: list[dict]) -> None:
    psa_connection.connectwise_provider(uow, provider_id)
    uow.repo.replace_psa_lookups(provider_id, rows)
    uow.commit()


def refresh(core, provider_id: int) -> dict:
    """Fetches the look-ups again (network outside any transaction) and stores them.
    -> {kind: count}. A ConnectWise that cannot be read is a Conflict with the reason."""
    connection = core.run(psa_connection._connection_of, provider_id)
    if connection is None:
        raise Conflict("the provider has no ConnectWise connection yet")
    try:
        rows = fetch(core.psa_clients.client(provider_id, connection))
    except ApiError as exc:
        raise Conflict(f"ConnectWise look-ups could not be fetched: {exc.message}") from None
    core.run(store, provider_id, rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + len(row["items"])
    return counts


def refresh_all(core) -> dict:
    """The hourly job: every ConnectWise provider with a connection; failures are reported."""
    ids = core.run(lambda uow: [p.id for p in uow.repo.connectwise_providers()
                                if uow.repo.psa_connection(p.id) is not None])
    errors = []
    for provider_id in ids:
        try:
            refresh(core, provider_id)
        except Conflict as exc:
            errors.append(f"provider {provider_id}: {exc.message}")
    return {"refreshed": len(ids) - len(errors), "errors": errors}


def ensure(core, provider_id: int) -> str | None:
    """Fetches the look-ups if none are cached; returns why that failed, else None."""
    if core.run(lambda uow: bool(uow.repo.psa_lookups(provider_id))):
        return None
    try:
        refresh(core, provider_id)
    except Conflict as exc:
        return exc.message
    return None


class Lookups:
    """The cached look-ups of one provider, by kind and board."""

    def __init__(self, rows) -> None:
        self.fetched_at = max((r.fetched_at for r in rows), default=None)
        self._rows = {(r.kind, r.scope): r.items for r in rows}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def items(self, kind: str, board_id: int | None = None) -> list[dict]:
        return self._rows.get((kind, str(board_id) if board_id is not None else ""), [])

    def find(self, kind: str, name: str, board_id: int | None = None) -> dict | None:
        wanted = (name or "").strip().lower()
        for item in self.items(kind, board_id):
            if item["name"].lower() == wanted or str(item.get("identifier") or "").lower() == wanted:
                return item
        return None

    def first_closed_status(self, board_id: int) -> str | None:
        return next((s["name"] for s in self.items("statuses", board_id) if s.get("closedStatus")),
                    None)

    def view(self) -> dict:
        boards = self.items("boards")
        return {"fetched_at": iso(self.fetched_at), "boards": boards,
                "statuses": {b["name"]: self.items("statuses", b["id"]) for b in boards},
                "types": {b["name"]: self.items("types", b["id"]) for b in boards},
                **{kind: self.items(kind) for kind in ("priorities", "contacts", "companies",
                                                        "products")}}


def load(uow, provider_id: int, kinds: tuple[str, ...] | None = None) -> Lookups:
    return Lookups(uow.repo.psa_lookups(provider_id, kinds))


def lookups_view(uow, provider_id: int) -> dict:
    psa_connection.connectwise_provider(uow, provider_id)
    return load(uow, provider_id).view()
