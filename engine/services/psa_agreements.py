"""Agreement quantities (Mailprotector's model), nightly and on demand: for each customer with
an `agreement` at a ConnectWise provider, the count of its assets of each mapped type (the
`service` mapping: asset type -> product) becomes the quantity of the agreement's addition for
that product. Only differences are sent (PATCH `/quantity`, or a new addition); never a price
or a cost. Each run's report (changed / unchanged / errors) is kept."""

from __future__ import annotations

from engine.adapters.connectwise_client import ApiError, ConnectWiseClient
from engine.exceptions import Conflict
from engine.services import psa_connection
from engine.services.psa_lookups import load
from engine.services.views import iso


def _plan(uow, provider_id: int) -> list[dict]:
    """What the provider's agreements should hold: per customer with an agreement, the
    wanted quantity of each mapped product."""
    psa_connection.connectwise_provider(uow, provider_id)
    mapping = {m.ours.lower(): m.theirs for m in uow.repo.psa_mappings(provider_id, "service")}
    products = {p["name"]: p["id"] for p in load(uow, provider_id, ("products",)).items(
        "products")}
    plan = []
    for row in uow.repo.psa_customer_settings_of(provider_id):
        agreement = row.data.get("names", {}).get("agreement")
        if not agreement or not row.enabled:
            continue
        counts = uow.repo.asset_type_counts(row.customer_id)
        wanted: dict[str, int] = {}
        for asset_type, product in mapping.items():
            wanted[product] = wanted.get(product, 0) + counts.get(asset_type, 0)
        plan.append({"customer": uow.repo.customer(row.customer_id).name,
                     "agreement": int(agreement), "wanted": wanted, "product_ids": products})
    return plan


def _sync_agreement(client: ConnectWiseClient, item: dict, report: dict) -> None:
    path = f"/finance/agreements/{item['agreement']}/additions"
    additions = client.get_all(path, fields="id,product,quantity,cancelledDate")
    current = {}
    for addition in additions:
        identifier = (addition.get("product") or {}).get("identifier")
        if identifier and not addition.get("cancelledDate"):
            current.setdefault(identifier, addition)
    for product, quantity in sorted(item["wanted"].items()):
        addition = current.get(product)
        where = f"{item['customer']}: agreement {item['agreement']}, {product}"
        if addition is None and quantity == 0 or (
                addition is not None and addition.get("quantity") == quantity):
            report["unchanged"] += 1
            continue
        if addition is None:
            reference = {"identifier": product}
            if product in item["product_ids"]:
                reference["id"] = item["product_ids"][product]
            client.post(path, {"product": reference, "quantity": quantity,
                               "billCustomer": "Billable"})
            report["details"].append(f"{where}: added with quantity {quantity}")
        else:
            client.patch(f"{path}/{int(addition['id'])}",
                         [{"op": "replace", "path": "/quantity", "value": quantity}])
            report["details"].append(f"{where}: {addition.get('quantity')} -> {quantity}")
        report["changed"] += 1


def _record(uow, provider_id: int, trigger: str, report: dict) -> None:
    uow.repo.insert_psa_sync_run(provider_id=provider_id, trigger=trigger,
                                 changed=report["changed"], unchanged=report["unchanged"],
                                 errors=report["errors"], details=report["details"],
                                 finished_at=uow.context.clock.now())
    uow.commit()


def sync_provider(core, provider_id: int, trigger: str = "manual") -> dict:
    """Runs the sync for one provider -> {changed, unchanged, errors}; kept as a report."""
    plan = core.run(_plan, provider_id)
    report = {"changed": 0, "unchanged": 0, "errors": [], "details": []}
    connection = core.run(psa_connection.load_connection, provider_id) if plan else None
    if plan and connection is None:
        raise Conflict("the provider has no ConnectWise connection yet")
    for item in plan:
        try:
            _sync_agreement(core.psa_clients.client(provider_id, connection), item, report)
        except ApiError as exc:  # one agreement failing does not stop the others
            report["errors"].append(f"{item['customer']}: agreement {item['agreement']}: "
                                    f"{exc.message}")
    core.run(_record, provider_id, trigger, report)
    return {"changed": report["changed"], "unchanged": report["unchanged"],
            "errors": report["errors"]}


def sync_all(core) -> dict:
    """The nightly job: every ConnectWise provider with a connection."""
    ids = core.run(lambda uow: [p.id for p in uow.repo.connectwise_providers()
                                if uow.repo.psa_connection(p.id) is not None])
    totals = {"providers": 0, "changed": 0, "unchanged": 0, "errors": []}
    for provider_id in ids:
        try:
            result = sync_provider(core, provider_id, "nightly")
        except Conflict as exc:
            totals["errors"].append(f"provider {provider_id}: {exc.message}")
            continue
        totals["providers"] += 1
        totals["changed"] += result["changed"]
        totals["unchanged"] += result["unchanged"]
        totals["errors"].extend(f"provider {provider_id}: {e}" for e in result["errors"])
    return totals


def sync_reports(uow, provider_id: int) -> list[dict]:
    psa_connection.connectwise_provider(uow, provider_id)
    return [{"at": iso(run.finished_at), "trigger": run.trigger, "changed": run.changed,
             "unchanged": run.unchanged, "errors": run.errors, "details": run.details}
            for run in uow.repo.psa_sync_runs(provider_id)]
