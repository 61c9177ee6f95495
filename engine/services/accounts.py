"""Accounts: password sign-in with lock-out, users, and group membership."""

from __future__ import annotations

from datetime import timedelta

from engine.exceptions import InvalidInput, NotAuthenticated, NotFound
from engine.services import admin
from engine.services.views import group_view

MAX_FAILED_LOGINS = 5
LOCK_FOR = timedelta(minutes=15)
BAD_LOGIN = "invalid user name or password"
_dummy_hash: list[str] = []


def _session_view(uow, user) -> dict:
    return {"id": user.id, "name": user.name, "role": user.role,
            "group_ids": sorted(uow.repo.group_ids_of_user(user.id))}


def login_with_password(uow, name: str, password: str) -> dict:
    """Checks a password; after MAX_FAILED_LOGINS failures the account is locked for LOCK_FOR."""
    user = uow.repo.user_by_name(name)
    now = uow.context.clock.now()
    if user is None:
        if not _dummy_hash:
            _dummy_hash.append(admin.hash_password("not a password"))
        admin.verify_password(_dummy_hash[0], password)  # as slow as for a real user
        raise NotAuthenticated(BAD_LOGIN)
    locked_until = user.locked_until
    if locked_until and locked_until > now:
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        raise NotAuthenticated(f"too many failed attempts: this account is locked for "
                               f"{minutes} more minute(s)")
    if not admin.verify_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.failed_logins, user.locked_until = 0, now + LOCK_FOR
        uow.commit()
        raise NotAuthenticated(BAD_LOGIN)
    user.failed_logins, user.locked_until = 0, None
    uow.commit()
    return _session_view(uow, user)


def session_user(uow, user_id: int) -> dict | None:
    """The signed-in user's name, role and groups; None once the user is gone."""
    user = uow.repo.user_by_id(user_id)
    return _session_view(uow, user) if user is not None else None


def list_users(uow) -> list[dict]:
    now = uow.context.clock.now()
    names = {g.id: g.name for g in uow.repo.groups()}
    return [{"id": u.id, "name": u.name, "role": u.role,
             "locked": bool(u.locked_until and u.locked_until > now),
             "groups": sorted(names[i] for i in uow.repo.group_ids_of_user(u.id) if i in names)}
            for u in uow.repo.users()]


def unlock_user(uow, name: str) -> None:
    """Lifts a lock-out before it runs out."""
    user = uow.repo.user_by_name(name)
    if user is None:
        raise NotFound(f"user {name!r} not found")
    user.failed_logins, user.locked_until = 0, None
    uow.commit()


def _group(uow, name: str):
    group = uow.repo.group_by_name(name)
    if group is None:
        raise NotFound(f"group {name!r} not found")
    return group


def group_detail(uow, name: str) -> dict:
    """A group with its members, and every user (to pick members from)."""
    group = _group(uow, name)
    return {**group_view(group), "members": [u.name for u in uow.repo.members_of(group.id)],
            "users": [{"name": u.name, "role": u.role} for u in uow.repo.users()]}


def set_group_members(uow, name: str, user_names: list[str]) -> list[str]:
    """Replaces a group's members."""
    group = _group(uow, name)
    users = [uow.repo.user_by_name(n) for n in user_names]
    unknown = [n for n, u in zip(user_names, users, strict=True) if u is None]
    if unknown:
        raise InvalidInput(f"unknown users: {', '.join(unknown)}", field="members")
    uow.repo.set_members(group.id, {u.id for u in users})
    uow.commit()
    return sorted(user_names)
