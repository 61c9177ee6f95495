"""Admin use cases: users, API tokens, providers and groups."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.adapters import orm
from engine.domain import credentials
from engine.domain.events import ALL_BINDINGS, BUNDLED_PROCESSES, REQUIRED_BINDINGS
from engine.exceptions import Conflict, InvalidInput, NotAuthenticated, NotFound
from engine.services import inbound_settings, psa_connection
from engine.services.views import group_view, provider_view

ROLES = ("admin", "designer", "agent", "integration_manager")
CHANNELS = ("soap", "email", "connectwise")
NAME = re.compile(r"^[\w .@+-]{1,80}$")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(uow, name: str, password: str, role: str) -> dict:
    """Creates a login. Passwords are stored as argon2 hashes."""
    if not NAME.match(name or ""):
        raise InvalidInput("user name: 1-80 letters, digits, spaces or . @ + - _", field="name")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if len(password or "") < 8:
        raise InvalidInput("password must have at least 8 characters", field="password")
    if uow.repo.user_by_name(name):
        raise Conflict(f"user {name!r} already exists")
    user = orm.User(name=name, password_hash=hash_password(password), role=role, failed_logins=0)
    uow.repo.add(user)
    uow.commit()
    return {"id": user.id, "name": user.name, "role": user.role}


def create_token(uow, user_name: str) -> str:
    """Issues an API token for a user; only its hash is stored, so it is shown once."""
    user = uow.repo.user_by_name(user_name)
    if user is None:
        raise NotFound(f"user {user_name!r} not found")
    token = credentials.new_api_token()
    uow.repo.add(orm.ApiToken(user_id=user.id, token_hash=credentials.token_hash(token)))
    uow.commit()
    return token


def user_for_token(uow, token: str) -> orm.User:
    record = uow.repo.token(credentials.token_hash(token or ""))
    if record is None:
        raise NotAuthenticated("invalid or missing API token")
    return record.user


def _new_credentials(uow, provider: orm.Provider) -> str:
    secret = uow.context.settings.secret_key
    provider.password_salt = credentials.new_salt()
    password = credentials.provider_password(secret, provider.username, provider.password_salt)
    provider.password_hash = credentials.password_fingerprint(password, provider.password_salt)
    return password


def _check_channel(channel: str) -> None:
    # The address (endpoint_url / email) may come later: until it is set, requests to the
    # provider are recorded as failed with the reason, and can be replayed once it is.
    if channel not in CHANNELS:
        raise InvalidInput("channel must be 'soap', 'email' or 'connectwise'", field="channel")


def create_provider(uow, name: str, channel: str, endpoint_url: str | None = None,
                    email: str | None = None, trust_sender: bool = False,
                    tag_labels: dict | None = None, connection: dict | None = None) -> dict:
    """Creates a provider with SOAP credentials; the password is returned only here."""
    if not NAME.match(name or ""):
        raise InvalidInput("provider name: 1-80 letters, digits, spaces or . @ + - _", field="name")
    _check_channel(channel)
    if uow.repo.provider_by_name(name):
        raise Conflict(f"provider {name!r} already exists")
    username = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + "-" + secrets.token_hex(3)
    provider = orm.Provider(name=name, channel=channel, endpoint_url=endpoint_url, email=email,
                            username=username, trust_sender=trust_sender,
                            tag_labels=tag_labels or {})
    password = _new_credentials(uow, provider)
    uow.repo.add(provider)
    if connection is not None:  # ConnectWise (CONTRACT §7): the private key is sealed
        psa_connection.save_connection(uow, provider, connection)
    uow.repo.flush()
    inbound_settings.ensure(uow, provider)  # inbound off, a callback key drawn
    view = provider_view(provider, uow.context.settings.public_url)
    uow.commit()
    return {**view, "password": password}


def update_provider(uow, provider_id: int, changes: dict) -> dict:
    """Changes a provider's channel, addresses, sender trust or tag labels (not its name)."""
    provider = uow.repo.provider(provider_id)
    if "channel" in changes:
        _check_channel(changes["channel"])
    for field in ("channel", "endpoint_url", "email", "trust_sender", "tag_labels"):
        if field in changes:
            setattr(provider, field, changes[field])
    if changes.get("connection") is not None:  # fields left out keep their value
        psa_connection.save_connection(uow, provider, changes["connection"])
    inbound_settings.apply_changes(uow, provider, changes)
    uow.repo.flush()
    view = provider_view(provider, uow.context.settings.public_url)
    uow.commit()
    return view


def regenerate_provider_password(uow, name: str) -> dict:
    """Draws new SOAP credentials for a provider; the old password stops working."""
    provider = uow.repo.provider_by_name(name)
    if provider is None:
        raise NotFound(f"provider {name!r} not found")
    password = _new_credentials(uow, provider)
    uow.commit()
    return {**provider_view(provider, uow.context.settings.public_url), "password": password}


def _bindings(uow, integrated: bool, processes: dict | None) -> dict[str, str]:
    processes = {k: v for k, v in (processes or {}).items() if v}
    unknown = set(processes) - set(ALL_BINDINGS)
    if unknown:
        raise InvalidInput(f"unknown process events: {', '.join(sorted(unknown))}",
                           field="processes")
    if integrated and not processes:
        processes = dict(BUNDLED_PROCESSES)
    missing = [event for event in REQUIRED_BINDINGS if integrated and event not in processes]
    if missing:
        raise InvalidInput(f"an integrated group needs processes for {', '.join(missing)}",
                           field="processes")
    for event, process_id in processes.items():
        if uow.repo.latest_model(process_id) is None:
            raise InvalidInput(f"process {process_id!r} (for {event}) is not deployed",
                               field="processes")
    return processes


def create_group(uow, name: str, integrated: bool = False, provider: str | None = None,
                 processes: dict | None = None) -> dict:
    """Creates a group; an integrated one names a provider and binds processes by event."""
    if not NAME.match(name or ""):
        raise InvalidInput("group name: 1-80 letters, digits, spaces or . @ + - _", field="name")
    if uow.repo.group_by_name(name):
        raise Conflict(f"group {name!r} already exists")
    group = orm.Group(name=name, integrated=bool(integrated))
    _configure_group(uow, group, integrated, provider, processes)
    uow.repo.add(group)
    uow.commit()
    return group_view(group)


def update_group(uow, name: str, integrated: bool, provider: str | None,
                 processes: dict | None) -> dict:
    group = uow.repo.group_by_name(name)
    if group is None:
        raise NotFound(f"group {name!r} not found")
    _configure_group(uow, group, integrated, provider, processes)
    uow.commit()
    return group_view(group)


def _configure_group(uow, group: orm.Group, integrated: bool, provider: str | None,
                     processes: dict | None) -> None:
    provider_row = None
    if provider:
        provider_row = uow.repo.provider_by_name(provider)
        if provider_row is None:
            raise InvalidInput(f"provider {provider!r} not found", field="provider")
    if integrated and provider_row is None:
        raise InvalidInput("an integrated group needs a provider", field="provider")
    group.integrated = bool(integrated)
    group.provider = provider_row
    bindings = _bindings(uow, integrated, processes)
    group.bindings = [orm.ProcessBinding(event=event, process_id=process_id)
                      for event, process_id in sorted(bindings.items())]
