"""Group membership for operators' scripts (REST and CLI): read, replace, add."""

from __future__ import annotations

from engine.exceptions import InvalidInput, NotFound


def _group(uow, name: str):
    group = uow.repo.group_by_name(name)
    if group is None:
        raise NotFound(f"group {name!r} not found")
    return group


def _users(uow, names: list[str]) -> dict:
    users = uow.repo.users_named(sorted(set(names)))
    unknown = sorted(set(names) - set(users))
    if unknown:
        raise InvalidInput(f"unknown users: {', '.join(unknown)}", field="users")
    return users


def members(uow, group: str) -> dict:
    """A group and the names of its members."""
    row = _group(uow, group)
    return {"group": row.name, "members": [u.name for u in uow.repo.members_of(row.id)]}


def replace_members(uow, group: str, users: list[str]) -> dict:
    """Makes exactly these users the group's members (an empty list empties it)."""
    row = _group(uow, group)
    found = _users(uow, users)
    uow.repo.set_members(row.id, {u.id for u in found.values()})
    uow.commit()
    return members(uow, group)


def add_members(uow, group: str, users: list[str]) -> dict:
    """Adds users to a group; members already in it stay."""
    row = _group(uow, group)
    found = _users(uow, users)
    current = {u.id for u in uow.repo.members_of(row.id)}
    uow.repo.set_members(row.id, current | {u.id for u in found.values()})
    uow.commit()
    return members(uow, group)
