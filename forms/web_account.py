"""Account pages: change one's own password; an admin resets another user's; an admin edits a
provider's addresses (what PATCH /api/v1/providers/<id> changes)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from marshmallow import EXCLUDE, Schema, fields, validate

from engine.domain.tags import DEFAULT_LABELS
from engine.exceptions import NotFound
from engine.services import admin, queries
from engine.services.passwords import change_own_password, reset_password
from forms import web_schemas
from forms.web_common import core, parse, roles
from forms.web_errors import new_blueprint

bp = new_blueprint("web_account", __name__)
SECRET = validate.Length(max=1000)


class OwnPasswordIn(Schema):
    class Meta:
        unknown = EXCLUDE

    current_password = fields.String(required=True, validate=SECRET)
    new_password = fields.String(required=True, validate=SECRET)
    repeat_password = fields.String(required=True, validate=SECRET)


class ResetPasswordIn(Schema):
    class Meta:
        unknown = EXCLUDE

    new_password = fields.String(required=True, validate=SECRET)
    repeat_password = fields.String(required=True, validate=SECRET)


class ProviderEditIn(web_schemas.ProviderIn):
    class Meta:
        unknown = EXCLUDE
        exclude = ("name",)


@bp.get("/account/password")
@login_required
def password_page():
    return render_template("account/password.html")


@bp.post("/account/password")
@login_required
def change_password():
    data = parse(OwnPasswordIn)
    core().run(change_own_password, current_user.id, data["current_password"],
               data["new_password"], data["repeat_password"])
    flash("Your password has been changed.", "ok")
    return redirect(url_for("web_account.password_page"))


@bp.post("/users/<name>/password")
@roles()
def reset(name: str):
    data = parse(ResetPasswordIn)
    core().run(reset_password, name, data["new_password"], data["repeat_password"])
    flash(f"The password of {name} has been reset.", "ok")
    return redirect(url_for("web_admin.users"))


def _provider(provider_id: int) -> dict:
    found = [p for p in core().run(queries.list_providers) if p["id"] == provider_id]
    if not found:
        raise NotFound(f"provider {provider_id} not found")
    return found[0]


@bp.get("/providers/<int:provider_id>/edit")
@roles()
def provider_page(provider_id: int):
    return render_template("admin/provider_edit.html", provider=_provider(provider_id),
                           labels=DEFAULT_LABELS)


@bp.post("/providers/<int:provider_id>/edit")
@roles()
def update_provider(provider_id: int):
    data = parse(ProviderEditIn)
    provider = core().run(admin.update_provider, provider_id, data)
    flash(f"Provider {provider['name']} saved.", "ok")
    return redirect(url_for("web_account.provider_page", provider_id=provider_id))
