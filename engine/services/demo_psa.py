"""The demo's ConnectWise provider: "Managed NOC", reached through the simulated ConnectWise
that `make run` serves in-process under /demo-psa (its state at /demo-psa/_sim/state).

`liaison demo` calls `ensure_psa_demo` with the address of a simulator it runs for the
moment (the same seed and state file), so the look-ups, settings and mappings are set
without the web server running.
"""

from __future__ import annotations

import secrets
import uuid

from engine.adapters.connectwise_client import Connection, ConnectWiseClient
from engine.services import admin, psa_lookups, psa_settings

PSA_PROVIDER = "NOC Partner"
PSA_GROUP = "Managed NOC"
PSA_SIMULATOR_PATH = "/demo-psa"
API_ROOT = "/v4_6_release/apis/3.0"
SETTINGS = {"board": "Managed NOC", "service_type": "Incident",
            "priority": "Priority 3 - Normal Response", "contact": "Dana Noc",
            "company": "LiaisonMSP", "auto_close": True}
PRIORITIES = {"critical": "Priority 1 - Emergency Response",
              "high": "Priority 2 - Quick Response", "low": "Priority 4 - Schedule Maintenance"}


def api_url(settings) -> str:
    return settings.public_url + PSA_SIMULATOR_PATH + API_ROOT


def state_file(settings):
    return settings.instance_path / "psa-simulator.json"


def simulator_credentials(creds: dict) -> dict:
    """The simulated ConnectWise's API member, drawn once and kept in the demo credentials."""
    if "psa_private_key" not in creds:
        creds.update(psa_company_id="liaison_demo", psa_public_key=secrets.token_hex(8),
                     psa_private_key=secrets.token_hex(8), psa_client_id=str(uuid.uuid4()))
    return {key: creds[f"psa_{key}"] for key in ("company_id", "public_key", "private_key",
                                                  "client_id")}


def _connection(settings, creds: dict) -> dict:
    return {"url": api_url(settings), **simulator_credentials(creds)}


def _ensure_provider(uow, creds: dict) -> int:
    settings = uow.context.settings
    provider = uow.repo.provider_by_name(PSA_PROVIDER)
    if provider is None:
        return admin.create_provider(uow, PSA_PROVIDER, "connectwise",
                                     connection=_connection(settings, creds))["id"]
    # follows LIAISON_PORT / LIAISON_PUBLIC_URL
    admin.update_provider(uow, provider.id, {"connection": {"url": api_url(settings)}})
    return provider.id


def _ensure_group(uow) -> None:
    if uow.repo.group_by_name(PSA_GROUP) is None:
        admin.create_group(uow, PSA_GROUP, integrated=True, provider=PSA_PROVIDER)
    group = uow.repo.group_by_name(PSA_GROUP)
    agent = uow.repo.user_by_name("agent")
    if agent is not None:
        members = {u.id for u in uow.repo.members_of(group.id)} | {agent.id}
        uow.repo.set_members(group.id, members)
    uow.commit()


def ensure_psa_demo(core, creds: dict, lookup_url: str | None) -> None:
    """Creates the ConnectWise provider and its group once; with `lookup_url` (a simulator
    running now) also fetches the look-ups and sets the demo's settings and mappings."""
    provider_id = core.run(_ensure_provider, creds)
    core.run(_ensure_group)
    if lookup_url is None or core.run(lambda uow: uow.repo.psa_settings(provider_id)):
        return
    connection = Connection(url=lookup_url, **simulator_credentials(creds))
    rows = psa_lookups.fetch(ConnectWiseClient(connection))
    core.run(psa_lookups.store, provider_id, rows)
    core.run(psa_settings.put_settings, provider_id, SETTINGS)
    core.run(psa_settings.put_mapping, provider_id, "priority", PRIORITIES)
