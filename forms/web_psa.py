"""The page of a ConnectWise provider (`/providers/<id>`): connection (the private key is never
shown), *Test connection*, look-ups, organisation settings, mappings with *Not Assigned*,
errors. Admins and integration managers only; each view calls one use case."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from engine.services import (
    admin,
    psa_agreements,
    psa_connection,
    psa_customers,
    psa_lookups,
    psa_reports,
    psa_settings,
)
from forms.web_common import core, roles
from forms.web_errors import new_blueprint

bp = new_blueprint("web_psa", __name__)


def _back(provider_id: int, anchor: str = ""):
    return redirect(url_for("web_psa.provider_page", provider_id=provider_id) + anchor)


def _filled(*names: str) -> dict:
    return {name: request.form[name].strip() for name in names
            if request.form.get(name, "").strip()}


@bp.get("/providers/<int:provider_id>")
@roles("integration_manager")
def provider_page(provider_id: int):
    return render_template("admin/provider.html", **core().run(psa_reports.provider_page,
                                                               provider_id))


@bp.post("/providers/<int:provider_id>/connection")
@roles("integration_manager")
def save_connection(provider_id: int):
    # an empty private-key field keeps the stored key (it is never sent to the browser)
    values = _filled(*psa_connection.FIELDS)
    core().run(admin.update_provider, provider_id, {"connection": values})
    flash("Connection saved.", "ok")
    return _back(provider_id, "#connection")


@bp.post("/providers/<int:provider_id>/test-connection")
@roles("integration_manager")
def test_connection(provider_id: int):
    result = psa_connection.check_connection(core(), provider_id)
    if result["ok"]:
        flash(f"Connection works (ConnectWise {result.get('version') or ''}).", "ok")
    else:
        flash(f"Connection failed: {result['error']}", "error")
    return _back(provider_id, "#connection")


@bp.post("/providers/<int:provider_id>/lookups/refresh")
@roles("integration_manager")
def refresh_lookups(provider_id: int):
    counts = psa_lookups.refresh(core(), provider_id)
    flash("Look-ups refreshed: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()), "ok")
    return _back(provider_id, "#settings")


@bp.post("/providers/<int:provider_id>/settings")
@roles("integration_manager")
def save_settings(provider_id: int):
    values = {key: request.form.get(key) or None for key in psa_settings.NAME_KEYS}
    values["auto_close"] = request.form.get("auto_close") == "on"
    psa_lookups.ensure(core(), provider_id)
    core().run(psa_settings.put_settings, provider_id, values, replace=True)  # the whole form
    flash("Organisation settings saved.", "ok")
    return _back(provider_id, "#settings")


@bp.post("/providers/<int:provider_id>/mappings/<kind>")
@roles("integration_manager")
def save_mapping(provider_id: int, kind: str):
    # each row is "map:<ours>" = theirs, or "" for Not Assigned; a new pair comes as new_*
    pairs = {key[4:]: value or None for key, value in request.form.items()
             if key.startswith("map:")}
    new = _filled("new_ours", "new_theirs")
    if len(new) == 2:
        pairs[new["new_ours"]] = new["new_theirs"]
    core().run(psa_settings.put_mapping, provider_id, kind, pairs)
    flash(f"Mapping of {kind} saved.", "ok")
    return _back(provider_id, "#mappings")


@bp.post("/providers/<int:provider_id>/agreement-sync")
@roles("integration_manager")
def agreement_sync(provider_id: int):
    result = psa_agreements.sync_provider(core(), provider_id, "manual")
    flash(f"Agreement sync: {result['changed']} changed, {result['unchanged']} unchanged, "
          f"{len(result['errors'])} error(s).", "error" if result["errors"] else "ok")
    return _back(provider_id, "#agreements")


@bp.get("/providers/<int:provider_id>/customers")
@roles("integration_manager")
def choose_customer(provider_id: int):
    customer = request.args.get("customer", "")
    if not customer.isdigit():
        flash("Choose a customer.", "error")
        return _back(provider_id, "#customers")
    return redirect(url_for("web_psa.customer_page", provider_id=provider_id,
                            customer_id=int(customer)))


@bp.get("/providers/<int:provider_id>/customers/<int:customer_id>")
@roles("integration_manager")
def customer_page(provider_id: int, customer_id: int):
    return render_template("admin/provider_customer.html",
                           **core().run(psa_reports.customer_page, provider_id, customer_id))


@bp.post("/providers/<int:provider_id>/customers/<int:customer_id>")
@roles("integration_manager")
def save_customer(provider_id: int, customer_id: int):
    # an empty field is "organisation default": not an override
    values = {key: value for key in (*psa_settings.NAME_KEYS, "agreement")
              if (value := request.form.get(key, "").strip())}
    if request.form.get("auto_close") in ("on", "off"):
        values["auto_close"] = request.form["auto_close"] == "on"
    values["enabled"] = request.form.get("disabled") != "on"
    psa_lookups.ensure(core(), provider_id)
    core().run(psa_customers.put_customer_settings, customer_id, provider_id, values,
               replace=True)  # the form is the whole set: an empty field is no override
    flash("Settings for this customer saved.", "ok")
    return redirect(url_for("web_psa.customer_page", provider_id=provider_id,
                            customer_id=customer_id))


@bp.post("/providers/<int:provider_id>/customers/<int:customer_id>/reset")
@roles("integration_manager")
def reset_customer(provider_id: int, customer_id: int):
    core().run(psa_customers.delete_customer_settings, customer_id, provider_id)
    flash("Back to the organisation defaults.", "ok")
    return redirect(url_for("web_psa.customer_page", provider_id=provider_id,
                            customer_id=customer_id))
