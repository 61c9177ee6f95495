"""What every web blueprint shares: CSRF check, security headers, HTML error pages.

No page shows a stack trace: unexpected errors are logged and answered with a plain 500 page.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine.exceptions import LiaisonError, TaskNotFound
from forms.errors import http_error_response, status_for
from forms.web_common import back_to

log = logging.getLogger(__name__)
MESSAGES = {
    400: "The request could not be understood.",
    403: "Your role does not allow this page.",
    404: "There is nothing here, or it is not yours to see.",
    405: "This page cannot be used that way.",
    409: "That cannot be done in the current state.",
    413: "The upload is too large.",
    422: "Some values are not valid.",
    500: "Something went wrong on our side. It has been logged; please try again.",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
CSRF_MESSAGE = ("The form was not sent by this site or has expired (missing or invalid CSRF "
                "token). Reload the page and try again.")


def add_security_headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(status: int, message: str | None = None, title: str | None = None):
    body = render_template("error.html", status=status, title=title or f"Error {status}",
                           message=message or MESSAGES.get(status, MESSAGES[400]))
    return add_security_headers(make_response(body, status))


def on_http_error(exc: HTTPException):
    if isinstance(exc, CSRFError):
        return error_page(400, CSRF_MESSAGE, "Form refused")
    return error_page(exc.code or 500)


def on_liaison_error(exc: LiaisonError):
    status = status_for(exc)
    # A form that failed goes back to its page with the reason; a task the user may not see
    # is a 404 whatever the method (its existence is not confirmed).
    if request.method == "POST" and not isinstance(exc, TaskNotFound):
        flash(exc.message, "error")
        return redirect(back_to(url_for("web.index")))
    return error_page(status, exc.message if status not in (403, 404) else None)


def on_validation_error(exc: ValidationError):
    for field, problems in exc.normalized_messages().items():
        text = problems[0] if isinstance(problems, list) and problems else str(problems)
        flash(f"{field.replace('_', ' ')}: {text}", "error")
    if request.method == "POST":
        return redirect(back_to(url_for("web.index")))
    return error_page(422, "Some of the filters are not valid; see above.")


def on_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return on_http_error(exc)
    log.exception("unexpected error on %s", request.path)
    return error_page(500)


def protect_csrf() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        current_app.extensions["csrf"].protect()


def new_blueprint(name: str, import_name: str, **options) -> Blueprint:
    """A web blueprint: CSRF on every POST, security headers, HTML errors."""
    blueprint = Blueprint(name, import_name, **options)
    blueprint.before_request(protect_csrf)
    blueprint.after_request(add_security_headers)
    blueprint.register_error_handler(HTTPException, on_http_error)
    blueprint.register_error_handler(LiaisonError, on_liaison_error)
    blueprint.register_error_handler(ValidationError, on_validation_error)
    blueprint.register_error_handler(Exception, on_unexpected)
    return blueprint


def unmatched_url(exc: HTTPException):
    """URLs no blueprint matched: an HTML page, except under the API (JSON) and SOAP."""
    if request.path.startswith("/api/"):
        return http_error_response(exc)
    if request.path.lower().startswith("/workflow/"):
        return exc
    return error_page(exc.code or 404)
