"""The admin's pages: groups (integration, processes, members), providers, users."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for

from engine.domain.events import ALL_BINDINGS, REQUIRED_BINDINGS
from engine.domain.tags import DEFAULT_LABELS
from engine.services import admin, queries
from engine.services.accounts import group_detail, list_users, set_group_members, unlock_user
from forms import web_schemas as schemas
from forms.web_common import core, parse, roles
from forms.web_errors import new_blueprint

bp = new_blueprint("web_admin", __name__)


def _process_ids() -> list[str]:
    return sorted({m["process_id"] for m in core().run(queries.list_models)})


def _group_choices() -> dict:
    return {"providers": core().run(queries.list_providers), "process_ids": _process_ids(),
            "events": ALL_BINDINGS, "required": REQUIRED_BINDINGS}


@bp.get("/groups")
@roles()
def groups():
    return render_template("admin/groups.html", groups=core().run(queries.list_groups),
                           **_group_choices())


@bp.post("/groups")
@roles()
def create_group():
    group = core().run(admin.create_group, **schemas.group_form(request.form))
    flash(f"Group {group['name']} created.", "ok")
    return redirect(url_for("web_admin.group_page", name=group["name"]))


@bp.get("/groups/<name>")
@roles()
def group_page(name: str):
    return render_template("admin/group.html", group=core().run(group_detail, name),
                           **_group_choices())


@bp.post("/groups/<name>")
@roles()
def update_group(name: str):
    data = schemas.group_form({**request.form, "name": name})
    core().run(admin.update_group, data["name"], data["integrated"], data["provider"],
               data["processes"])
    flash(f"Group {name} saved.", "ok")
    return redirect(url_for("web_admin.group_page", name=name))


@bp.post("/groups/<name>/members")
@roles()
def update_members(name: str):
    data = schemas.MembersIn().load({"members": request.form.getlist("members")})
    members = core().run(set_group_members, name, data["members"])
    flash(f"Group {name} has {len(members)} member(s).", "ok")
    return redirect(url_for("web_admin.group_page", name=name))


def _providers_page(created: dict | None = None, status: int = 200):
    body = render_template("admin/providers.html", providers=core().run(queries.list_providers),
                           created=created, labels=DEFAULT_LABELS)
    response = make_response(body, status)
    if created:  # the password is in this page: keep it out of every cache
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/providers")
@roles("integration_manager")  # they open ConnectWise providers' pages from here
def providers():
    return _providers_page()


@bp.post("/providers")
@roles()
def create_provider():
    created = core().run(admin.create_provider, **parse(schemas.ProviderIn))
    return _providers_page(created, 201)


@bp.post("/providers/<name>/password")
@roles()
def regenerate_password(name: str):
    return _providers_page(core().run(admin.regenerate_provider_password, name))


@bp.get("/users")
@roles()
def users():
    return render_template("admin/users.html", users=core().run(list_users), roles=admin.ROLES)


@bp.post("/users")
@roles()
def create_user():
    user = core().run(admin.create_user, **parse(schemas.UserIn))
    flash(f"User {user['name']} ({user['role']}) created.", "ok")
    return redirect(url_for("web_admin.users"))


@bp.post("/users/<name>/unlock")
@roles()
def unlock(name: str):
    core().run(unlock_user, name)
    flash(f"User {name} unlocked.", "ok")
    return redirect(url_for("web_admin.users"))
