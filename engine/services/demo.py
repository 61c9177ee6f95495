"""Demo data for `make run` / `liaison demo`: idempotent, credentials kept in instance/."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from engine.domain import credentials
from engine.services import admin, customers, demo_psa, models, tasks

DEMO_PROVIDER = "Demo Carrier"
DEMO_GROUP = "Network Carrier"
LOCAL_GROUP = "Service Desk"
DEMO_VENDOR = "Demo Vendor"  # a SOAP provider: the simulator served by `make run`
VENDOR_GROUP = "Hardware Vendor"
SIMULATOR_PATH = "/demo-provider/ProviderService"
DEMO_CUSTOMER = "ACME Retail"
DEMO_ASSETS = [
    ("LDS-RTR-1", {"serial": "FTX2231A0QZ", "manufacturer": "Cisco", "type": "router",
                   "notes": "Leeds branch edge router"}),
    ("LDS-0042", {"type": "line", "manufacturer": "Demo Carrier", "notes": "WAN line, Leeds"}),
]


def _credentials_file(settings) -> Path:
    return settings.instance_path / "demo-credentials.json"


def read_credentials(settings) -> dict:
    """The demo's logins and provider credentials kept by `liaison demo` ({} before it ran)."""
    path = _credentials_file(settings)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load_or_create_credentials(settings) -> dict:
    path = _credentials_file(settings)
    if path.exists():
        return read_credentials(settings)
    values = {"admin_password": "admin-" + secrets.token_urlsafe(6),
              "agent_password": "agent-" + secrets.token_urlsafe(6),
              "api_token": credentials.new_api_token()}
    path.write_text(json.dumps(values, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return values


def save_credentials(settings, creds: dict) -> None:
    _credentials_file(settings).write_text(json.dumps(creds, indent=2), encoding="utf-8")


def deploy_bundled(core) -> list[dict]:
    """Deploys processes/*.bpmn (a new version only when a file changed)."""
    return [core.run(models.deploy_process_model, path.read_bytes(), path.name, "bundled",
                     models.bundled_forms(path), skip_unchanged=True)
            for path in models.bundled_files()]


def _ensure_users(uow, creds: dict) -> None:
    from engine.adapters import orm
    for name, role, key in (("admin", "admin", "admin_password"),
                            ("agent", "agent", "agent_password")):
        if uow.repo.user_by_name(name) is None:
            uow.repo.add(orm.User(name=name, role=role, failed_logins=0,
                                  password_hash=admin.hash_password(creds[key])))
    uow.repo.flush()
    admin_user = uow.repo.user_by_name("admin")
    digest = credentials.token_hash(creds["api_token"])
    if uow.repo.token(digest) is None:
        uow.repo.add(orm.ApiToken(user_id=admin_user.id, token_hash=digest))
    uow.commit()


def _ensure_provider(uow, creds: dict) -> None:
    if uow.repo.provider_by_name(DEMO_PROVIDER) is None:
        created = admin.create_provider(uow, DEMO_PROVIDER, "email",
                                        email="noc@carrier.example")
    elif "provider_password" not in creds:  # the credentials file was lost: draw new ones
        created = admin.regenerate_provider_password(uow, DEMO_PROVIDER)
    else:
        return
    creds["provider_username"] = created["username"]
    creds["provider_password"] = created["password"]


def _ensure_vendor(uow, creds: dict) -> None:
    endpoint = uow.context.settings.public_url + SIMULATOR_PATH
    vendor = uow.repo.provider_by_name(DEMO_VENDOR)
    if vendor is None:
        created = admin.create_provider(uow, DEMO_VENDOR, "soap", endpoint_url=endpoint)
    elif "vendor_password" not in creds:
        created = admin.regenerate_provider_password(uow, DEMO_VENDOR)
    else:
        vendor.endpoint_url = endpoint  # follows LIAISON_PORT / LIAISON_PUBLIC_URL
        uow.commit()
        return
    creds["vendor_username"] = created["username"]
    creds["vendor_password"] = created["password"]


def _ensure_groups(uow) -> None:
    if uow.repo.group_by_name(DEMO_GROUP) is None:
        admin.create_group(uow, DEMO_GROUP, integrated=True, provider=DEMO_PROVIDER)
    if uow.repo.group_by_name(VENDOR_GROUP) is None:
        admin.create_group(uow, VENDOR_GROUP, integrated=True, provider=DEMO_VENDOR)
    if uow.repo.group_by_name(LOCAL_GROUP) is None:
        admin.create_group(uow, LOCAL_GROUP, integrated=False)
    agent = uow.repo.user_by_name("agent")
    group_ids = {uow.repo.group_by_name(n).id for n in (DEMO_GROUP, LOCAL_GROUP, VENDOR_GROUP)}
    for group_id in group_ids:
        members = {u.id for u in uow.repo.members_of(group_id)} | {agent.id}
        uow.repo.set_members(group_id, members)
    uow.commit()


def _ensure_ticket(uow) -> dict | None:
    _, total = uow.repo.tasks(limit=1)
    if total:
        return None
    ticket = tasks.create_ticket(uow, "Branch office Leeds: WAN link down",
                                 "Users in Leeds cannot reach the data centre since 08:10.",
                                 customer=DEMO_CUSTOMER)
    customer_id = uow.repo.ticket(ticket["id"]).customer_id
    for name, details in DEMO_ASSETS:
        customers.create_asset(uow, customer_id, name, **details)
    first = tasks.create_task(uow, ticket["id"], "Check the carrier line to Leeds",
                              "Line ID LDS-0042. Please investigate the carrier side.",
                              group=DEMO_GROUP, actor="demo")
    tasks.create_task(uow, ticket["id"], "Replace the Leeds edge router",
                      "Router LDS-RTR-1 reports a failed power supply.", group=VENDOR_GROUP,
                      actor="demo")
    tasks.create_task(uow, ticket["id"], "Watch the Leeds WAN link until it is stable",
                      "Please monitor LDS-0042 for 24 hours after the repair.",
                      group=demo_psa.PSA_GROUP, actor="demo", priority="high")
    return first


def load_demo(core, psa_lookup_url: str | None = None) -> dict:
    """Creates our own business, the demo admin, agent, providers, groups and one ticket of a
    customer with two assets, once. `psa_lookup_url`: a simulated ConnectWise running now
    (demo_psa.ensure_psa_demo)."""
    creds = load_or_create_credentials(core.settings)
    deploy_bundled(core)
    core.run(customers.ensure_own_customer)
    core.run(_ensure_users, creds)
    core.run(_ensure_provider, creds)
    core.run(_ensure_vendor, creds)
    demo_psa.simulator_credentials(creds)
    save_credentials(core.settings, creds)
    core.run(_ensure_groups)
    demo_psa.ensure_psa_demo(core, creds, psa_lookup_url)
    core.run(_ensure_ticket)
    return creds
