"""Provider logins (SOAP, SOAP by e-mail): password check and WS-Security nonce replay store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from engine.adapters import orm
from engine.domain import credentials
from engine.exceptions import NotAuthenticated


class PasswordToken(Protocol):
    username: str
    nonce: str | None

    def matches(self, password: str) -> bool: ...


def _expected_password(secret_key: str, provider: orm.Provider) -> str | None:
    password = credentials.provider_password(secret_key, provider.username, provider.password_salt)
    # The stored fingerprint proves the salt was drawn under the current secret key.
    if credentials.password_fingerprint(password, provider.password_salt) != provider.password_hash:
        return None
    return password


@dataclass(frozen=True)
class ProviderLogin:
    """What an edge needs to check a provider's password without reading the database again.
    `credential` (the stored fingerprint) lets the event's transaction confirm it is current."""

    provider_id: int
    name: str
    password: str = field(repr=False)
    credential: str = field(repr=False)


def provider_login(uow, username: str) -> ProviderLogin | None:
    """The provider's current login data, or None when there is no such (valid) provider."""
    provider = uow.repo.provider_by_username(username)
    expected = _expected_password(uow.context.settings.secret_key, provider) if provider else None
    if expected is None:
        return None
    return ProviderLogin(provider.id, provider.name, expected, provider.password_hash)


def verify_provider_login(uow, token: PasswordToken, now: datetime) -> str:
    """Checks the token's password and records its nonce once; returns the provider's name."""
    provider = uow.repo.provider_by_username(token.username)
    expected = _expected_password(uow.context.settings.secret_key, provider) if provider else None
    if expected is None or not token.matches(expected):
        raise NotAuthenticated("invalid username or password")
    if token.nonce is not None:
        uow.repo.add(orm.WsNonce(provider_id=provider.id, nonce=token.nonce, created_at=now))
        try:
            uow.commit()
        except IntegrityError:
            raise NotAuthenticated("the WS-Security nonce was used before") from None
    return provider.name


def purge_nonces(uow, before: datetime) -> int:
    """Forgets nonces old enough that their Created would be refused anyway."""
    removed = uow.repo.purge_nonces(before)
    uow.commit()
    return removed
