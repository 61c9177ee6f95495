"""A ConnectWise provider's connection: URL, company id, public and private key, client id.

The private key is write-only: it is sealed before it is stored (engine.domain.sealed), no
view returns it (`has_private_key` says whether one is set), and error messages never quote
it. `test_connection` answers within seconds with a readable reason.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from engine.adapters import orm
from engine.adapters.connectwise_client import ApiError, Connection, ConnectWiseClient, new_session
from engine.domain import sealed
from engine.exceptions import Conflict, DeliveryError, InvalidInput, LiaisonError

FIELDS = ("url", "company_id", "public_key", "private_key", "client_id")
TOKEN = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable, no spaces: they go into headers
TEST_TIMEOUTS = (4.0, 8.0)


def _check_url(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("connection.url must be an http(s) URL", field="connection.url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("connection.url must not carry credentials, a query or a fragment",
                           field="connection.url")
    path = parts.path.rstrip("/")
    if not path.lower().endswith("/apis/3.0"):
        raise InvalidInput("connection.url is the API root up to and including /apis/3.0, "
                           "e.g. https://cw.example.com/v4_6_release/apis/3.0",
                           field="connection.url")
    return url.rstrip("/")


def checked(values: dict) -> dict:
    """The given connection fields, validated (each named `connection.<field>` in errors)."""
    result = {}
    for key, value in values.items():
        if key not in FIELDS:
            raise InvalidInput(f"unknown connection field {key!r}", field=f"connection.{key}")
        if key == "url":
            result[key] = _check_url(str(value or ""))
        elif not TOKEN.match(str(value or "")):
            # the value itself is never echoed: it may be the private key
            raise InvalidInput(f"connection.{key} must be 1-200 printable characters without "
                               f"spaces", field=f"connection.{key}")
        else:
            result[key] = str(value)
    return result


def save_connection(uow, provider: orm.Provider, values: dict) -> None:
    """Sets a provider's connection; fields left out keep their value (a first connection
    needs all of them). Part of the caller's unit of work: it does not commit."""
    values = checked(values)
    row = uow.repo.psa_connection(provider.id) if provider.id is not None else None
    if row is None:
        missing = [key for key in FIELDS if key not in values]
        if missing:
            raise InvalidInput(f"connection.{missing[0]} is required", field=f"connection.{missing[0]}")
        row = orm.PsaConnection(provider=provider)
        uow.repo.add(row)
    secret = uow.context.settings.secret_key
    pool = uow.context.psa_clients
    uow.after_commit.append(lambda: pool.forget(provider.id))
    for key, value in values.items():
        if key == "private_key":
            row.private_key_sealed = sealed.seal(secret, value)
        else:
            setattr(row, key, value)


def load_connection(uow, provider_id: int) -> Connection | None:
    """The provider's connection with the private key opened, for a call; None if unset."""
    row = uow.repo.psa_connection(provider_id)
    if row is None:
        return None
    private_key = sealed.unseal(uow.context.settings.secret_key, row.private_key_sealed)
    return Connection(url=row.url, company_id=row.company_id, public_key=row.public_key,
                      private_key=private_key, client_id=row.client_id)


def connectwise_provider(uow, provider_id: int) -> orm.Provider:
    provider = uow.repo.provider(provider_id)
    if provider.channel != "connectwise":
        raise Conflict(f"provider {provider.name} uses channel {provider.channel}, not connectwise")
    return provider


def _connection_of(uow, provider_id: int) -> Connection | None:
    connectwise_provider(uow, provider_id)
    return load_connection(uow, provider_id)


def client_for(core, provider_id: int, stamp: object = None) -> ConnectWiseClient:
    """The pooled client of a provider, for deliveries (the channel's look-up). `stamp` is the
    connection's version (`updated_at`) as the worker's claim read it: while the pooled
    client was made from that version, the connection is not read (nor its key opened)
    again; without a stamp it always is."""
    client = core.psa_clients.current(provider_id, stamp)
    if client is not None:
        return client
    try:
        found = core.run(_stamped_connection, provider_id)
    except LiaisonError as exc:
        raise DeliveryError(exc.message, retryable=False) from None
    if found is None:
        raise DeliveryError(f"provider {provider_id} has no ConnectWise connection",
                            retryable=False)
    return core.psa_clients.client(provider_id, *found)


def _stamped_connection(uow, provider_id: int) -> tuple[Connection, object] | None:
    row = uow.repo.psa_connection(provider_id)
    if row is None:
        return None
    return load_connection(uow, provider_id), row.updated_at


def check_connection(core, provider_id: int) -> dict:
    """Calls ConnectWise once (GET /system/info) with the stored connection:
    `{"ok": true, "version"}` or `{"ok": false, "error": "<reason>"}`."""
    try:
        connection = core.run(_connection_of, provider_id)
    except sealed.SealBroken as exc:
        return {"ok": False, "error": exc.message}
    if connection is None:
        return {"ok": False, "error": "no connection is set: give url, company_id, public_key, "
                                      "private_key and client_id"}
    session = new_session(pool_size=1, connect_retries=0)
    try:
        info = ConnectWiseClient(connection, session, TEST_TIMEOUTS).system_info()
    except ApiError as exc:
        return {"ok": False, "error": exc.message}
    finally:
        session.close()
    return {"ok": True, "version": info.get("version")}


def reencrypt_secrets(uow, old_key: str) -> int:
    """Seals every stored private key again under the current LIAISON_SECRET_KEY, opening it
    with `old_key`. Returns how many were re-sealed; one that opens with neither key fails
    the whole run (nothing is changed)."""
    if not old_key:
        raise InvalidInput("the old secret key is empty (set LIAISON_OLD_SECRET_KEY)",
                           field="old_key")
    new_key = uow.context.settings.secret_key
    count = 0
    for row in uow.repo.psa_connections():
        resealed = sealed.reseal(old_key, new_key, row.private_key_sealed)
        if resealed != row.private_key_sealed:
            row.private_key_sealed = resealed
            count += 1
    uow.after_commit.append(uow.context.psa_clients.close)
    uow.commit()
    return count
