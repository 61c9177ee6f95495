"""A ConnectWise provider's organisation-wide settings and its value mappings (CONTRACT §7),
and the effective settings a request is rendered with.

Names are checked against the cached look-ups when saved (422 naming the field) and stored
with the ConnectWise ids they resolved to, so rendering a request reads two small rows and
never calls ConnectWise. Unmapped values, and mappings that name something the provider no
longer has, fall back to the defaults: never an error at send time.
"""

from __future__ import annotations

from engine.adapters import orm
from engine.exceptions import InvalidInput
from engine.services.psa_connection import connectwise_provider
from engine.services.psa_lookups import Lookups, load

NAME_KEYS = ("board", "service_type", "priority", "contact", "company", "closed_status")
SETTING_KEYS = (*NAME_KEYS, "auto_close")
KIND_OF = {"board": "boards", "service_type": "types", "priority": "priorities",
           "contact": "contacts", "company": "companies", "closed_status": "statuses"}
BOARD_SCOPED = ("service_type", "closed_status")
TASK_PRIORITIES = ("low", "normal", "high", "critical")
MAPPING_KINDS = {"priority": "priorities", "service": "products"}


def _ref(key: str, item: dict) -> dict:
    if key == "company":
        return {"id": item["id"], "identifier": item.get("identifier") or item["name"]}
    return {"id": item["id"], "name": item["name"]}


def resolve_names(lookups: Lookups, names: dict, board: dict | None = None) -> dict:
    """{key: reference} for the named values; an unknown name is a 422 naming its key.
    `board` is the board reference that board-scoped names belong to when `names` has none."""
    if not lookups:
        raise InvalidInput("the provider's ConnectWise look-ups are not loaded yet: set and test "
                           "the connection, then refresh the look-ups", field=next(iter(names),
                                                                                  "board"))
    refs: dict[str, dict] = {}
    if names.get("board"):
        refs["board"] = _find(lookups, "board", names["board"], None)
    board = refs.get("board") or board
    for key in NAME_KEYS:
        if key == "board" or not names.get(key):
            continue
        if key in BOARD_SCOPED and board is None:
            raise InvalidInput(f"{key} needs a board", field=key)
        refs[key] = _find(lookups, key, names[key], board["id"] if key in BOARD_SCOPED else None)
    return refs


def _find(lookups: Lookups, key: str, name: str, board_id: int | None) -> dict:
    item = lookups.find(KIND_OF[key], str(name), board_id)
    if item is None:
        where = " on that board" if board_id is not None else ""
        raise InvalidInput(f"{key}: ConnectWise has no {key.replace('_', ' ')} named "
                           f"{name!r}{where}", field=key)
    return _ref(key, item)


def _clean(values: dict) -> dict:
    names = {}
    for key, value in values.items():
        if key not in SETTING_KEYS:
            raise InvalidInput(f"unknown setting {key!r}", field=key)
        if key == "auto_close":
            if not isinstance(value, bool):
                raise InvalidInput("auto_close must be true or false", field=key)
            names[key] = value
        elif value is not None:
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise InvalidInput(f"{key} must be a name of up to 200 characters", field=key)
            names[key] = value.strip()
    return names


def merged(stored: dict, values: dict) -> dict:
    """`values` over `stored`: a key given replaces (null removes it), a key left out keeps
    its value; a new board drops a kept closed status (it belonged to the old board)."""
    kept = {k: v for k, v in stored.items() if k not in values}
    if "board" in values and "closed_status" not in values:
        kept.pop("closed_status", None)
    return {**kept, **values}


def put_settings(uow, provider_id: int, values: dict, replace: bool = False) -> dict:
    """Sets the provider's organisation-wide settings (names as ConnectWise knows them): the
    keys given (null clears one); the others keep their values unless `replace`."""
    provider = connectwise_provider(uow, provider_id)
    row = uow.repo.psa_settings(provider.id)
    _clean(values)  # unknown keys and wrong types name their field before anything else
    names = _clean(values if replace or row is None else merged(row.data.get("names", {}),
                                                                   values))
    lookups = load(uow, provider.id)
    refs = resolve_names(lookups, {k: v for k, v in names.items() if k in NAME_KEYS})
    if row is None:
        row = orm.PsaSettings(provider_id=provider.id)
        uow.repo.add(row)
    default_closed = lookups.first_closed_status(refs["board"]["id"]) if "board" in refs else None
    row.data = {"names": names, "refs": refs, "closed_status_default": default_closed}
    uow.commit()
    return settings_view(row.data)


def organisation_settings(uow, provider_id: int) -> dict:
    row = uow.repo.psa_settings(provider_id)
    return dict(row.data) if row is not None else {"names": {}, "refs": {}}


def settings_view(data: dict) -> dict:
    names = data.get("names", {})
    view = {key: names.get(key) for key in SETTING_KEYS}
    view["auto_close"] = bool(names.get("auto_close", False))
    view["closed_status"] = names.get("closed_status") or data.get("closed_status_default")
    return view


def broken_settings(lookups: Lookups, data: dict) -> list[str]:
    """Settings naming something the provider no longer has (shown as broken)."""
    if not lookups:
        return []
    names, refs = data.get("names", {}), data.get("refs", {})
    board_id = refs.get("board", {}).get("id")
    broken = []
    for key in NAME_KEYS:
        if names.get(key) and lookups.find(KIND_OF[key], names[key],
                                           board_id if key in BOARD_SCOPED else None) is None:
            broken.append(key)
    return broken


def get_settings(uow, provider_id: int) -> dict:
    connectwise_provider(uow, provider_id)
    return settings_view(organisation_settings(uow, provider_id))


# -- mappings -------------------------------------------------------------------------------

def _check_kind(kind: str) -> None:
    if kind not in MAPPING_KINDS:
        raise InvalidInput(f"mapping kind must be one of {', '.join(MAPPING_KINDS)}", field="kind")


def _check_ours(kind: str, ours: str) -> None:
    if kind == "priority" and ours not in TASK_PRIORITIES:
        raise InvalidInput(f"{ours!r}: our priorities are {', '.join(TASK_PRIORITIES)}",
                           field=ours)
    if not ours.strip() or len(ours) > 120:
        raise InvalidInput("a mapped value of ours has 1-120 characters", field=ours or "body")


def put_mapping(uow, provider_id: int, kind: str, pairs: dict) -> dict:
    """Sets pairs of a mapping; a null value is *Not Assigned* and removes the pair."""
    provider = connectwise_provider(uow, provider_id)
    _check_kind(kind)
    lookups = load(uow, provider.id)
    current = {m.ours: m for m in uow.repo.psa_mappings(provider.id, kind)}
    for ours, theirs in pairs.items():
        _check_ours(kind, ours)
        if theirs is None:
            if ours in current:
                uow.repo.session.delete(current.pop(ours))
            continue
        if not isinstance(theirs, str) or lookups.find(MAPPING_KINDS[kind], theirs) is None:
            what = "priority" if kind == "priority" else "product"
            raise InvalidInput(f"{ours}: ConnectWise has no {what} named {theirs!r}"
                               if lookups else "the provider's ConnectWise look-ups are not "
                               "loaded yet: test the connection and refresh them", field=ours)
        if ours in current:
            current[ours].theirs = theirs
        else:
            current[ours] = orm.PsaMapping(provider_id=provider.id, kind=kind, ours=ours,
                                           theirs=theirs)
            uow.repo.add(current[ours])
    uow.commit()
    return {ours: row.theirs for ours, row in sorted(current.items())}


def get_mapping(uow, provider_id: int, kind: str) -> dict:
    connectwise_provider(uow, provider_id)
    _check_kind(kind)
    return {m.ours: m.theirs for m in uow.repo.psa_mappings(provider_id, kind)}


def mapping_rows(uow, provider_id: int) -> dict:
    """Every mapping with a `broken` flag (it names something ConnectWise no longer has)."""
    lookups = load(uow, provider_id)
    result: dict[str, list[dict]] = {kind: [] for kind in MAPPING_KINDS}
    for row in uow.repo.psa_mappings(provider_id):
        result[row.kind].append({"ours": row.ours, "theirs": row.theirs, "broken": bool(
            lookups) and lookups.find(MAPPING_KINDS[row.kind], row.theirs) is None})
    return result
