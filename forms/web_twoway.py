"""The two-way pages: a provider's link manager (sites and devices), its inbound switch and
error reports (`/providers/<id>/links`), and *Create/Update ticket in <provider>* on the task
page. Everyone who works tickets may look; only admins and integration managers see controls
(and only they may post them: 403 otherwise)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from engine.exceptions import InvalidInput
from engine.services import inbound_queue, inbound_settings, links, psa_inbound, task_links
from forms.web_common import actor, core, roles, visible_groups
from forms.web_errors import new_blueprint

bp = new_blueprint("web_twoway", __name__)
READERS = ("agent", "integration_manager", "designer")
MANAGERS = ("integration_manager",)


def _back(provider_id: int, anchor: str):
    return redirect(url_for("web_twoway.links_page", provider_id=provider_id) + anchor)


def _id(name: str) -> int | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a number", field=name)
    return int(value)


@bp.get("/providers/<int:provider_id>/links")
@roles(*READERS)
def links_page(provider_id: int):
    manager = current_user.may(*MANAGERS)
    page = core().run(links.links_page, provider_id, manager)
    return render_template("twoway/links.html", manager=manager, **page)


@bp.post("/providers/<int:provider_id>/inbound")
@roles(*MANAGERS)
def save_inbound(provider_id: int):
    changes = {"inbound_enabled": request.form.get("inbound_enabled") == "on",
               "inbound_group": request.form.get("inbound_group") or None}
    view = core().run(inbound_settings.set_inbound, provider_id, changes)
    state = "enabled" if view["inbound_enabled"] else "off"
    flash(f"Inbound {state}; {view['inbound_queued']} item(s) waiting in the queue.", "ok")
    return _back(provider_id, "#inbound")


@bp.post("/providers/<int:provider_id>/sites/<external_id>/link")
@roles(*MANAGERS)
def link_site(provider_id: int, external_id: str):
    create = request.form.get("create") == "1"
    site = core().run(links.link_site, provider_id, external_id, _id("customer_id"), create)
    flash(f"Site {site['name']} linked to {site['customer']['name']}.", "ok")
    return _back(provider_id, "#sites")


@bp.post("/providers/<int:provider_id>/sites/<external_id>/unlink")
@roles(*MANAGERS)
def unlink_site(provider_id: int, external_id: str):
    site = core().run(links.unlink_site, provider_id, external_id)
    done = site["unlinked"]
    flash(f"Site {site['name']} unlinked ({done['assets']} device(s) and {done['tickets']} "
          f"ticket(s) of its customer unlinked too).", "ok")
    return _back(provider_id, "#sites")


@bp.post("/providers/<int:provider_id>/devices/<external_id>/link")
@roles(*MANAGERS)
def link_device(provider_id: int, external_id: str):
    create = request.form.get("create") == "1"
    device = core().run(links.link_device, provider_id, external_id, _id("asset_id"), create)
    flash(f"Device {device['name']} linked to asset {device['asset']['name']}.", "ok")
    return _back(provider_id, "#devices")


@bp.post("/providers/<int:provider_id>/devices/<external_id>/unlink")
@roles(*MANAGERS)
def unlink_device(provider_id: int, external_id: str):
    device = core().run(links.unlink_device, provider_id, external_id)
    flash(f"Device {device['name']} unlinked.", "ok")
    return _back(provider_id, "#devices")


@bp.post("/providers/<int:provider_id>/refresh")
@roles(*MANAGERS)
def refresh(provider_id: int):
    counts = psa_inbound.refresh_sites(core(), provider_id)
    flash(f"Downloaded {counts['sites']} site(s) and {counts['devices']} device(s).", "ok")
    return _back(provider_id, "#sites")


@bp.post("/providers/<int:provider_id>/inbound/items/<int:item_id>/replay")
@roles(*MANAGERS)
def replay_item(provider_id: int, item_id: int):
    core().run(inbound_queue.replay_item, provider_id, item_id)
    flash(f"Inbound item {item_id} is back in the queue.", "ok")
    return _back(provider_id, "#errors")


@bp.post("/tasks/<int:task_id>/provider-ticket")
@roles("agent")
def provider_ticket(task_id: int):
    core().run(task_links.visible_task, task_id, visible_groups())
    sent = core().run(task_links.send_to_provider, task_id, request.form.get("provider", ""),
                      request.form.get("note", ""), actor())
    flash(f"{sent['request_type']} queued for {sent['provider']}.", "ok")
    return redirect(url_for("web_tasks.task_page", task_id=task_id))


@bp.get("/provider-links")
@roles(*READERS)
def providers_page():
    return render_template("twoway/providers.html",
                           providers=core().run(links.providers_overview))
