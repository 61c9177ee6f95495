"""The server-rendered web pages (CONTRACT §6), mounted by `app.create_app()`.

CSRF: every POST to a web page must carry the session's token (Flask-WTF). The check is
switched on for the web blueprints only (see web_errors.new_blueprint), so the REST API
(bearer tokens) and the SOAP service (WS-Security) never ask for one.
"""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask, redirect, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from engine.services.accounts import session_user
from forms import (
    web_account,
    web_admin,
    web_auth,
    web_customers,
    web_designer,
    web_exchanges,
    web_psa,
    web_rollout,
    web_sla,
    web_tasks,
    web_twoway,
)
from forms.web_common import ROLE_HOME, WebUser, core
from forms.web_errors import new_blueprint, unmatched_url

SESSION_HOURS = 8

home = new_blueprint("web", __name__, template_folder="templates", static_folder="static",
                     static_url_path="/static")


@home.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("web_auth.login"))
    return redirect(url_for(ROLE_HOME[current_user.role]))


@home.app_template_filter("pretty")
def pretty(value) -> str:
    """JSON for people: indented, non-ASCII kept (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@home.app_template_filter("from_json")
def from_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _configure(app: Flask) -> None:
    settings = app.extensions["liaison"].settings
    # Secure cookies need https: on by default when the public URL is https (also behind a
    # TLS proxy); LIAISON_COOKIE_SECURE=1/0 overrides. On plain http browsers drop them.
    override = settings.extra.get("LIAISON_COOKIE_SECURE", "").strip().lower()
    secure = (override in ("1", "true", "yes", "on") if override
              else settings.public_url.startswith("https://"))
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
        SESSION_COOKIE_NAME="liaison_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure, PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS))


def _login_manager(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "web_auth.login"
    manager.login_message = "Please sign in to see that page."
    manager.login_message_category = "info"
    manager.session_protection = "strong"

    @manager.user_loader
    def load_user(user_id: str):
        data = core().run(session_user, int(user_id)) if user_id.isdigit() else None
        return WebUser(data) if data else None


def register_web(app: Flask) -> None:
    """Mounts login, inbox, task pages, designer, admin, exchanges and customers on the app."""
    _configure(app)
    CSRFProtect(app)
    _login_manager(app)
    for blueprint in (home, web_auth.bp, web_tasks.bp, web_designer.bp, web_admin.bp,
                      web_exchanges.bp, web_customers.bp, web_sla.bp, web_account.bp,
                      web_rollout.bp, web_psa.bp, web_twoway.bp):
        app.register_blueprint(blueprint)
    for code in (404, 405):
        app.register_error_handler(code, unmatched_url)
