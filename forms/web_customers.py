"""The customer pages: list with search and create; one customer with its assets."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from engine.services import customers
from forms import web_schemas as schemas
from forms.web_common import core, parse, roles
from forms.web_errors import new_blueprint

bp = new_blueprint("web_customers", __name__)
READERS = ("agent", "integration_manager")  # and admin; they may also create and edit
MANAGERS = ("integration_manager",)  # merge customers, delete assets
ASSET_FIELDS = ("name", "serial", "manufacturer", "type", "notes")


def _fields(names: tuple[str, ...]) -> dict:
    # An edit form sends every field: an emptied one is cleared, not left as it was.
    return {name: request.form.get(name, "") for name in names}


def _to_customer(customer_id: int):
    return redirect(url_for("web_customers.customer_page", customer_id=customer_id))


@bp.get("/customers")
@roles(*READERS)
def customers_page():
    search = parse(schemas.CustomerFilterIn, request.args)["q"]
    return render_template("customers/list.html", search=search,
                           customers=core().run(customers.list_customers, search))


@bp.post("/customers")
@roles(*READERS)
def create_customer():
    created = core().run(customers.create_customer, **parse(schemas.CustomerIn))
    flash(f"Customer {created['name']} created.", "ok")
    return _to_customer(created["id"])


@bp.get("/customers/<int:customer_id>")
@roles(*READERS)
def customer_page(customer_id: int):
    return render_template("customers/customer.html",
                           **core().run(customers.customer_page, customer_id))


@bp.post("/customers/<int:customer_id>")
@roles(*READERS)
def update_customer(customer_id: int):
    saved = core().run(customers.update_customer, customer_id, **_fields(("name", "notes")))
    flash(f"Customer {saved['name']} saved.", "ok")
    return _to_customer(customer_id)


@bp.post("/customers/<int:customer_id>/merge")
@roles(*MANAGERS)
def merge_customer(customer_id: int):
    into = parse(schemas.MergeIn)["into"]
    kept = core().run(customers.merge_customers, customer_id, into)
    moved = kept["moved"]
    flash(f"Merged into {kept['name']}: {moved['tickets']} ticket(s), {moved['assets']} "
          f"asset(s) and {moved['sites']} provider site link(s) moved.", "ok")
    return _to_customer(kept["id"])


@bp.post("/customers/<int:customer_id>/assets")
@roles(*READERS)
def create_asset(customer_id: int):
    asset = core().run(customers.create_asset, customer_id, **_fields(ASSET_FIELDS))
    flash(f"Asset {asset['name']} added.", "ok")
    return _to_customer(customer_id)


@bp.post("/customers/<int:customer_id>/assets/<int:asset_id>")
@roles(*READERS)
def update_asset(customer_id: int, asset_id: int):
    asset = core().run(customers.update_asset, customer_id, asset_id, **_fields(ASSET_FIELDS))
    flash(f"Asset {asset['name']} saved.", "ok")
    return _to_customer(customer_id)


@bp.post("/customers/<int:customer_id>/assets/<int:asset_id>/delete")
@roles(*MANAGERS)
def delete_asset(customer_id: int, asset_id: int):
    core().run(customers.delete_asset, customer_id, asset_id)
    flash("Asset deleted.", "ok")
    return _to_customer(customer_id)
