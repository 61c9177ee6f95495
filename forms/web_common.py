"""Helpers every web view shares: the core, the signed-in user, role checks, form parsing."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, request
from flask_login import UserMixin, current_user, login_required
from marshmallow import Schema

ROLE_HOME = {"agent": "web_tasks.inbox", "designer": "web_designer.models_page",
             "integration_manager": "web_exchanges.exchanges", "admin": "web_tasks.inbox"}


class WebUser(UserMixin):
    """The signed-in user as the views see it: plain values, loaded once per request."""

    def __init__(self, data: dict) -> None:
        self.id = data["id"]
        self.name = data["name"]
        self.role = data["role"]
        self.group_ids = set(data["group_ids"])

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def core():
    return current_app.extensions["liaison"]


def roles(*allowed: str):
    """Signed in, with one of `allowed` roles (`admin` may do everything); else 403."""
    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not current_user.may(*allowed):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def actor() -> str:
    return current_user.name


def visible_groups() -> set[int] | None:
    """Agents see their groups' tasks only; other roles see all (None = no limit)."""
    return current_user.group_ids if current_user.role == "agent" else None


def parse(schema: type[Schema], source=None) -> dict:
    """Loads form fields (or query arguments) through a marshmallow schema.

    An empty field counts as not sent, so optional fields take their defaults.
    """
    source = request.form if source is None else source
    data = {key: value for key, value in source.items()
            if key != "csrf_token" and value.strip() != ""}
    return schema().load(data)


def safe_next(target: str | None, default: str) -> str:
    """Only a local path: a `next=` pointing elsewhere would make us an open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def back_to(default: str) -> str:
    """Where to return after a failed POST: the page the form was on, if it was ours."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return default
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""), default)
