"""The `liaison` console script. Errors: one line on stderr, exit 1 (2 for usage)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engine.config import Settings, parse_host_port
from engine.exceptions import BpmnInvalid, LiaisonError

log = logging.getLogger("liaison")


def _core(soap_by_mail: bool = False):
    from engine.core import Core
    core = Core(Settings.from_env())
    if soap_by_mail:  # commands that process inbound mail answer SOAP requests sent by mail
        from webservice.mount import wire_soap_by_mail
        wire_soap_by_mail(core)
    return core


def _require_schema(settings: Settings) -> None:
    """Servers refuse a database `init-db` has not prepared (they would fail every request)."""
    from engine.adapters.db import make_engine
    from engine.adapters.migrate import is_current
    settings = settings.resolved()
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        current = is_current(engine)
    finally:
        engine.dispose()
    if not current:
        raise LiaisonError("the database (LIAISON_DATABASE_URL) is not initialised or not at "
                           "this version's schema: run `liaison init-db` first")


def cmd_init_db(args) -> None:
    from engine.services.customers import ensure_own_customer
    from engine.services.demo import deploy_bundled
    core = _core()
    core.migrate()
    deployed = deploy_bundled(core)
    own = core.run(ensure_own_customer)
    print(f"database ready at {core.settings.database_url}; "
          f"{len(deployed)} bundled processes deployed; own business: {own['name']}")


def _demo_psa_simulator(settings):
    """The demo's simulated ConnectWise, run for a moment so that `demo` can read its lists."""
    from engine.services import demo, demo_psa
    from webservice.psa_simulator import ConnectWiseSimulator, State, start_simulator
    creds = demo.load_or_create_credentials(settings)
    member = demo_psa.simulator_credentials(creds)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    demo.save_credentials(settings, creds)
    return start_simulator(ConnectWiseSimulator(**member,
                                                state=State(demo_psa.state_file(settings))))


def cmd_demo(args) -> None:
    from engine.services.demo import DEMO_GROUP, VENDOR_GROUP, load_demo
    from engine.services.demo_psa import PSA_GROUP, PSA_SIMULATOR_PATH
    core = _core()
    core.migrate()
    simulator = _demo_psa_simulator(core.settings)
    try:
        creds = load_demo(core, simulator.url)
    finally:
        simulator.stop()
    url = core.settings.public_url
    print(f"""
liaison demo is ready.
  Web UI      {url}/login        user admin / {creds['admin_password']}
                                       agent agent / {creds['agent_password']}
  REST API    {url}/api/v1      Authorization: Bearer {creds['api_token']}
  SOAP        {url}/Workflow/WebService/WorkflowService.asmx?wsdl
              provider username {creds.get('provider_username')} password {creds.get('provider_password')}
  Demo groups "{DEMO_GROUP}" (e-mail provider; outbound mail lands in {core.settings.sent_mail_dir}/)
              "{VENDOR_GROUP}" (SOAP provider simulated by `make run`: acknowledges within seconds)
              "{PSA_GROUP}" (ConnectWise provider simulated by `make run`; its tickets:
                          {url}{PSA_SIMULATOR_PATH}/_sim/state)
""")


def cmd_serve(args) -> None:
    from app import serve
    settings = Settings.from_env()
    _require_schema(settings)
    port = args.port or settings.port
    if args.port and not settings.extra.get("LIAISON_PUBLIC_URL"):
        # the WSDL names the port we serve on, not LIAISON_PORT's default
        settings = settings.with_overrides(public_url=f"http://127.0.0.1:{port}")
    serve(settings, host=args.host, port=port, workers=args.workers)


def cmd_worker(args) -> None:
    import threading

    from engine.core import imap_poller
    from engine.worker import Worker
    _require_schema(Settings.from_env())
    core = _core(soap_by_mail=True)
    stop = threading.Event()
    if core.settings.imap_url:  # with LIAISON_WORKERS_INLINE=0, the worker polls IMAP
        threading.Thread(target=imap_poller(core).run_forever, args=(stop,),
                         name="liaison-imap", daemon=True).start()
    print("worker running; Ctrl-C stops it", file=sys.stderr)
    try:
        Worker(core).run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


def cmd_smtp(args) -> None:
    from engine.adapters.smtp_listener import serve_until_interrupted
    from engine.core import smtp_listener
    settings = Settings.from_env()
    listen = parse_host_port(args.listen, "--listen") if args.listen else settings.smtp_listen
    if listen is None:
        raise LiaisonError("set --listen HOST:PORT or LIAISON_SMTP_LISTEN")
    _require_schema(settings)
    core = _core()
    serve_until_interrupted(smtp_listener(core, *listen),
                            f"{listen[0]}:{listen[1]} for *@{core.settings.mail_domain}")


def cmd_deploy(args) -> None:
    from engine.services import models
    core = _core()
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise LiaisonError(f"{name}: no such file")
        result = core.run(models.deploy_process_model, path.read_bytes(), path.name, "cli",
                          models.bundled_forms(path), skip_unchanged=True)
        state = "deployed" if result["created"] else "unchanged"
        print(f"{path.name}: {result['process_id']} version {result['version']} ({state})")


def cmd_ingest_eml(args) -> None:
    from engine.services.mail_intake import ingest_files
    for line in ingest_files(_core(soap_by_mail=True), [Path(f) for f in args.files]):
        print(line)


def cmd_create_user(args) -> None:
    from engine.services import admin
    password = sys.stdin.readline().rstrip("\n")
    user = _core().run(admin.create_user, args.name, password, args.role)
    print(f"user {user['name']} created with role {user['role']}")


def cmd_create_token(args) -> None:
    from engine.services import admin
    token = _core().run(admin.create_token, args.user)
    print(f"API token for {args.user} (shown once):")
    print(token)


def cmd_create_provider(args) -> None:
    from engine.services import admin
    created = _core().run(admin.create_provider, args.name, args.channel,
                          endpoint_url=args.endpoint_url, email=args.email)
    print(f"provider {created['name']} created; SOAP credentials (shown once):")
    print(f"username: {created['username']}")
    print(f"password: {created['password']}")


def cmd_replay(args) -> None:
    from engine.services import outbox
    exchange = _core().run(outbox.replay_exchange, args.exchange_id)
    print(f"exchange {exchange['id']} ({exchange['request_type']}) queued for delivery again")


def cmd_dry_run(args) -> int:
    from engine.services import dry_run
    path = Path(args.file)
    if not path.is_file():
        raise LiaisonError(f"{args.file}: no such file")
    report = dry_run.run(_core(), path.read_bytes(), path.name, args.group, args.tasks,
                         args.event)
    for line in dry_run.report_lines(report):
        print(line)
    return 0 if report["ok"] else 1


def cmd_set_members(args) -> None:
    from engine.services import membership
    result = _core().run(membership.replace_members, args.group, args.users)
    print(f"group {result['group']}: {', '.join(result['members']) or 'no members'}")


def cmd_add_member(args) -> None:
    from engine.services import membership
    result = _core().run(membership.add_members, args.group, args.users)
    print(f"group {result['group']}: {', '.join(result['members'])}")


def cmd_purge_instances(args) -> None:
    from engine.adapters.archive import JsonLinesArchive
    from engine.services import housekeeping
    core = _core()
    before = housekeeping.cutoff(core.clock.now(), args.older_than)
    archive = JsonLinesArchive(Path(args.archive)) if args.archive else None
    total = housekeeping.purge_all(core, before, archive)
    where = f"; archived to {args.archive}" if args.archive and total else ""
    print(f"purged {total} completed process instances older than {args.older_than} days{where}")


def cmd_simulate_provider(args) -> None:
    from webservice.simulator import run_simulator
    run_simulator(args.host, args.port, args.liaison_url, args.username, args.password,
                  args.delay)


def cmd_simulate_psa(args) -> None:
    import os

    from engine.services.demo import read_credentials
    from webservice.psa_simulator.app import run_simulator
    demo = read_credentials(Settings.from_env())  # the demo's API member, when there is one
    credentials = {key: demo.get(f"psa_{key}", f"demo-{key.replace('_', '-')}")
                   for key in ("company_id", "public_key", "private_key", "client_id")}
    for key in ("company_id", "public_key", "client_id"):
        credentials[key] = getattr(args, key) or credentials[key]
    # the private key from the environment, not the command line (process lists show that)
    credentials["private_key"] = (os.environ.get("LIAISON_PSA_SIM_PRIVATE_KEY")
                                  or credentials["private_key"])
    run_simulator(args.host, args.port, credentials, Path(args.state) if args.state else None,
                  args.latency)


def cmd_reencrypt_secrets(args) -> None:
    import os

    from engine.services.psa_connection import reencrypt_secrets
    old_key = os.environ.get("LIAISON_OLD_SECRET_KEY", "")
    if not old_key:
        raise LiaisonError("set LIAISON_OLD_SECRET_KEY to the secret key the values were "
                           "sealed with (LIAISON_SECRET_KEY is the new one)")
    count = _core().run(reencrypt_secrets, old_key)
    print(f"{count} provider secret(s) re-encrypted with the current LIAISON_SECRET_KEY")


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return int(value)


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {value!r}")
    return int(value)


def _days(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaison", description="BPM engine for integrated groups")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    add("init-db", cmd_init_db, "apply migrations, deploy the bundled processes and create "
                                "our own business (LIAISON_OWN_CUSTOMER)")
    p = add("serve", cmd_serve, "serve web, REST and SOAP (and, inline, the worker)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=None,
                   help="default LIAISON_PORT, else 8000")
    p.add_argument("--workers", type=_count, default=None, metavar="N",
                   help="N server processes under gunicorn, one per core (default: one "
                        "waitress process)")
    add("worker", cmd_worker, "deliver the outbox and fire timers")
    p = add("smtp", cmd_smtp, "receive provider mail over SMTP")
    p.add_argument("--listen", metavar="HOST:PORT")
    p = add("deploy", cmd_deploy, "deploy BPMN files (a new version when changed)")
    p.add_argument("files", nargs="+", metavar="FILE.bpmn")
    p = add("ingest-eml", cmd_ingest_eml, "process .eml files as inbound mail")
    p.add_argument("files", nargs="+", metavar="FILE")
    p = add("create-user", cmd_create_user, "create a user; the password is read from stdin")
    p.add_argument("name")
    p.add_argument("--role", required=True,
                   choices=["admin", "designer", "agent", "integration_manager"])
    p = add("create-token", cmd_create_token, "issue an API token for a user")
    p.add_argument("user")
    p = add("create-provider", cmd_create_provider, "create a provider and print its credentials")
    p.add_argument("name")
    p.add_argument("--channel", choices=["soap", "email"], default="email",
                   help="how liaison reaches the provider (default: email)")
    p.add_argument("--endpoint-url")
    p.add_argument("--email")
    add("demo", cmd_demo, "load the demo data (idempotent) and print the logins")
    p = add("replay", cmd_replay, "send an outbound exchange again")
    p.add_argument("exchange_id", type=int)
    p = add("dry-run", cmd_dry_run, "replay a group's recent tasks into a BPMN file (nothing is "
            "sent or stored); exit 1 when a task differs, fails or would wait for ever")
    p.add_argument("file", metavar="FILE.bpmn")
    p.add_argument("--group", required=True, help="the integrated group whose history to replay")
    p.add_argument("--tasks", type=int, default=20, help="how many recent tasks (default 20)")
    p.add_argument("--event", default=None, help="the binding to try the process for, when the "
                   "group does not bind its process id yet (e.g. new_assignment)")
    p = add("set-members", cmd_set_members, "make exactly these users a group's members")
    p.add_argument("group")
    p.add_argument("users", nargs="*", metavar="USER", help="none: the group is emptied")
    p = add("add-member", cmd_add_member, "add users to a group (its members stay)")
    p.add_argument("group")
    p.add_argument("users", nargs="+", metavar="USER")
    p = add("purge-instances", cmd_purge_instances,
            "delete completed process instances older than DAYS (tasks and exchanges stay)")
    p.add_argument("--older-than", type=_days, required=True, metavar="DAYS",
                   help="completed at least this many days ago")
    p.add_argument("--archive", metavar="FILE.jsonl",
                   help="append each instance (with its state) to this file before deleting it")
    p = add("simulate-provider", cmd_simulate_provider, "run a simulated SOAP provider")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument("--liaison-url", default=None)
    p.add_argument("--username", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--delay", type=float, default=2.0)
    p = add("simulate-psa", cmd_simulate_psa, "run a simulated ConnectWise Manage REST API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument("--company-id", dest="company_id", default=None)
    p.add_argument("--public-key", dest="public_key", default=None)
    p.add_argument("--client-id", dest="client_id", default=None)
    p.add_argument("--state", metavar="FILE", help="keep the simulator's data in this JSON file")
    p.add_argument("--latency", type=float, default=0.0,
                   help="seconds added to every answer (a remote server's delay)")
    add("reencrypt-secrets", cmd_reencrypt_secrets,
        "re-encrypt stored provider secrets after LIAISON_SECRET_KEY changed (the old key "
        "in LIAISON_OLD_SECRET_KEY)")
    return parser


LONG_RUNNING = {"serve", "worker", "smtp", "simulate-provider", "simulate-psa"}


def _error_line(exc: LiaisonError) -> str:
    if isinstance(exc, BpmnInvalid) and exc.errors:
        first = exc.errors[0]
        where = f"line {first['line']}: " if first.get("line") else ""
        more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        return f"invalid BPMN: {where}{first['message']}{more}"
    return exc.message


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # One-shot commands print only their result; servers log their progress.
    level = logging.INFO if args.command in LONG_RUNNING else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # SpiffWorkflow logs every task state change at INFO: noise to an operator.
    logging.getLogger("spiff").setLevel(logging.WARNING)
    # werkzeug turns its own logger to INFO unless it is set (the demo's simulator uses it).
    logging.getLogger("werkzeug").setLevel(level)
    try:
        status = args.func(args)
    except LiaisonError as exc:
        print(f"liaison: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback for a user
        log.debug("unexpected error", exc_info=True)
        first_line = (str(exc).strip().splitlines() or [""])[0]  # drivers quote SQL below it
        print(f"liaison: error: {type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
