"""Sign in and out. Passwords are argon2 hashes; repeated failures lock the account."""

from __future__ import annotations

from flask import flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from engine.exceptions import NotAuthenticated
from engine.services.accounts import login_with_password
from forms.web_common import ROLE_HOME, WebUser, core, parse, safe_next
from forms.web_errors import new_blueprint
from forms.web_schemas import LoginIn

bp = new_blueprint("web_auth", __name__)


@bp.get("/login")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("web.index"))
    return render_template("login.html", name="")


@bp.post("/login")
def login_submit():
    data = parse(LoginIn)
    try:
        user = core().run(login_with_password, data["name"], data["password"])
    except NotAuthenticated as exc:
        flash(exc.message, "error")
        return render_template("login.html", name=data["name"], next=data["next"]), 401
    session.clear()  # nothing from before the sign-in survives it
    login_user(WebUser(user))
    return redirect(safe_next(data["next"], url_for(ROLE_HOME[user["role"]])))


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("web_auth.login"))
