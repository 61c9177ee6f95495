"""The WSGI application: REST, web pages and the SOAP service under one Flask app.

`create_app()` builds everything; nothing happens at import time.
"""

from __future__ import annotations

import logging

from flask import Flask, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine.config import Settings
from engine.core import Core
from engine.exceptions import LiaisonError
from forms.errors import (
    http_error_response,
    liaison_error_response,
    unexpected_error_response,
    validation_error_response,
)

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.is_json


def create_app(settings: Settings | None = None, core: Core | None = None) -> Flask:
    core = core or Core(settings or Settings.from_env())
    app = Flask(__name__, static_folder=None)
    app.config.update(SECRET_KEY=core.settings.secret_key, MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
                      JSON_SORT_KEYS=False)
    app.extensions["liaison"] = core

    from forms import idempotency
    from forms.api import api
    app.register_blueprint(api)
    idempotency.init_app(app)
    _mount_edges(app, core)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if _wants_json():
            return http_error_response(exc)
        return exc

    @app.errorhandler(LiaisonError)
    def _liaison_error(exc: LiaisonError):
        return liaison_error_response(exc)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        return validation_error_response(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if _wants_json():
            return unexpected_error_response(exc)
        log.exception("unexpected error on %s", request.path)
        return "Internal error; it has been logged.", 500

    return app


def _mount_edges(app: Flask, core: Core) -> None:
    from forms.customers_api import customers_api
    from forms.mail_api import mail_api
    from forms.ops_api import ops_api
    from forms.psa_api import psa_api
    from forms.sla_api import sla_api
    from forms.twoway_api import twoway_api
    from forms.web import register_web
    from webservice.mount import mount_soap

    app.register_blueprint(mail_api)
    app.register_blueprint(customers_api)
    app.register_blueprint(sla_api)  # SLA targets and figures
    app.register_blueprint(ops_api)  # dry-runs, instance migration, members, CSV
    app.register_blueprint(psa_api)
    app.register_blueprint(twoway_api)
    register_web(app)
    mount_soap(app, core)
    if core.settings.extra.get("LIAISON_DEMO_PROVIDER") == "1":
        _mount_demo_provider(app, core)


def _mount_demo_provider(app: Flask, core: Core) -> None:
    """`make run` only: the simulated SOAP provider of the demo, served by this process."""
    from engine.services.demo import SIMULATOR_PATH, read_credentials
    from webservice.mount import CaseInsensitiveMount
    from webservice.simulator import SimulatedProvider, SimulatorApp

    creds = read_credentials(core.settings)
    if not creds.get("vendor_username"):
        return
    provider = SimulatedProvider(core.settings.public_url, creds["vendor_username"],
                                 creds["vendor_password"], delay=2.0)
    app.wsgi_app = CaseInsensitiveMount(app.wsgi_app, SIMULATOR_PATH, SimulatorApp(provider))
    if creds.get("psa_private_key"):
        _mount_demo_psa(app, core, creds)


def _mount_demo_psa(app: Flask, core: Core, creds: dict) -> None:
    """The demo's simulated ConnectWise under /demo-psa (its data kept in the instance folder)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from engine.services.demo_psa import PSA_SIMULATOR_PATH, simulator_credentials, state_file
    from webservice.psa_simulator import ConnectWiseSimulator, State

    simulator = ConnectWiseSimulator(**simulator_credentials(creds),
                                     state=State(state_file(core.settings)))
    app.extensions["demo_psa"] = simulator
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {PSA_SIMULATOR_PATH: simulator})

def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          workers: int | None = None) -> None:
    """Serves everything; with inline workers also the worker (and mail intake).

    By default one process: waitress (pure Python, any OS). With `workers`: gunicorn's
    pre-forking server, N processes on one shared socket, each with its own Core, its threads
    and (inline) its outbox worker; see README "Scaling out".
    """
    if workers:
        from serving import serve_processes  # gunicorn: Linux and other Unixes only
        serve_processes(settings, host, port, workers)
        return

    import threading

    from waitress import serve as waitress_serve

    from engine.core import start_mail_intake
    from engine.worker import start_inline

    core = Core(settings)
    app = create_app(core=core)
    stop = threading.Event()
    if core.settings.workers_inline:
        start_inline(core, stop)
        start_mail_intake(core, stop)
    print(f"liaison serving on http://{host}:{port} (public URL {core.settings.public_url})",
          flush=True)
    try:
        waitress_serve(app, host=host, port=port, threads=core.settings.server_threads,
                       ident="liaison", clear_untrusted_proxy_headers=True)
    finally:
        stop.set()
        core.close()

