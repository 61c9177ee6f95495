"""Passwords: a user changes their own (knowing the current one); an admin resets another's."""

from __future__ import annotations

from engine.exceptions import InvalidInput, NotFound
from engine.services import admin

MIN_LENGTH = 8


def _check_new(password: str, repeat: str) -> None:
    if len(password or "") < MIN_LENGTH:
        raise InvalidInput(f"the new password must have at least {MIN_LENGTH} characters",
                           field="new_password")
    if password != repeat:
        raise InvalidInput("the two new passwords differ", field="repeat_password")


def change_own_password(uow, user_id: int, current: str, new: str, repeat: str) -> None:
    """Changes the signed-in user's password after checking the current one."""
    user = uow.repo.user_by_id(user_id)
    if user is None:
        raise NotFound("user not found")
    if not admin.verify_password(user.password_hash, current or ""):
        raise InvalidInput("the current password is not right", field="current_password")
    _check_new(new, repeat)
    user.password_hash = admin.hash_password(new)
    uow.commit()


def reset_password(uow, name: str, new: str, repeat: str) -> None:
    """An admin sets a new password for a user; a lock-out ends with it."""
    user = uow.repo.user_by_name(name)
    if user is None:
        raise NotFound(f"user {name!r} not found")
    _check_new(new, repeat)
    user.password_hash = admin.hash_password(new)
    user.failed_logins, user.locked_until = 0, None
    uow.commit()
