"""Typed settings read once from the environment (and an optional `.env` file)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.exceptions import InvalidInput

DEFAULT_INSTANCE = Path("instance")


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def parse_host_port(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{name} must look like host:port, got {value!r}", field=name)
    return host.strip("[]"), int(port)


def _seconds(value: str | None, name: str, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise InvalidInput(f"{name} must be a number of seconds above 0, got {value!r}", field=name)
    return seconds


def _flag(value: str | None, default: bool, name: str) -> bool:
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        # a typo must not silently switch the in-process worker off
        raise InvalidInput(f"{name} must be 1 or 0, got {value!r}", field=name)
    return word in {"1", "true", "yes", "on"}


def _port(value: str | None) -> int:
    if value is None or value.strip() == "":
        return 8000
    if not value.strip().isdigit() or not 0 < int(value) < 65536:
        raise InvalidInput(f"LIAISON_PORT must be a port number 1-65535, got {value!r}",
                           field="LIAISON_PORT")
    return int(value)


def _hour(value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    if not value.strip().isdigit() or not 0 <= int(value) <= 23:
        raise InvalidInput(f"LIAISON_PSA_AGREEMENT_SYNC_HOUR must be an hour 0-23, got {value!r}",
                           field="LIAISON_PSA_AGREEMENT_SYNC_HOUR")
    return int(value)


def _positive(env: dict[str, str], name: str, default: int | None) -> int | None:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"{name} must be a positive whole number, got {value!r}", field=name)
    return int(value)


@dataclass(frozen=True)
class Settings:
    instance_path: Path = DEFAULT_INSTANCE
    database_url: str = ""
    secret_key: str = ""
    public_url: str = "http://127.0.0.1:8000"
    port: int = 8000  # LIAISON_PORT: where `liaison serve` listens unless --port says
    smtp_listen: tuple[str, int] | None = None
    mail_domain: str = "liaison.local"
    outbound_smtp: tuple[str, int] | None = None
    imap_url: str | None = None
    workers_inline: bool = True
    soap_max_body: int = 1024 * 1024
    bpmn_max_bytes: int = 2 * 1024 * 1024
    mail_max_bytes: int = 10 * 1024 * 1024
    delivery_attempts: int = 5
    delivery_backoff_seconds: float = 2.0
    # A worker's leases (outbox rows, scheduled jobs) last this long and are renewed by its
    # heartbeat while it lives: a killed worker's work is taken over this long after its death.
    worker_lease_seconds: float = 10.0
    # How long a writer waits for a task another writer holds before answering Busy.
    lock_timeout_seconds: float = 5.0
    script_timeout_seconds: float = 2.0
    script_memory_mb: int = 256
    psa_agreement_sync_hour: int = 2  # UTC hour of the nightly ConnectWise agreement sync
    server_threads: int = 8  # request threads per server process
    db_pool_size: int | None = None  # PostgreSQL connections per process; default: see pool_size
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pool_size(self) -> int:
        """Connections one process may hold: its request threads, the in-process worker and
        mail intake, and one spare."""
        return self.db_pool_size or self.server_threads + 3

    @property
    def own_address(self) -> str:
        return f"liaison@{self.mail_domain}"

    @property
    def sent_mail_dir(self) -> Path:
        """Where outbound mail is written when no LIAISON_OUTBOUND_SMTP is set (demo, tests)."""
        return self.instance_path / "sent-mail"

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(_read_dotenv(Path(".env")))
        env.update(os.environ if environ is None else environ)
        instance = Path(env.get("LIAISON_INSTANCE_PATH") or DEFAULT_INSTANCE)
        smtp_listen = env.get("LIAISON_SMTP_LISTEN")
        outbound = env.get("LIAISON_OUTBOUND_SMTP")
        port = _port(env.get("LIAISON_PORT"))
        return cls(
            instance_path=instance,
            database_url=env.get("LIAISON_DATABASE_URL") or f"sqlite:///{instance / 'liaison.db'}",
            secret_key=env.get("LIAISON_SECRET_KEY") or "",
            port=port,
            public_url=(env.get("LIAISON_PUBLIC_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
            smtp_listen=parse_host_port(smtp_listen, "LIAISON_SMTP_LISTEN") if smtp_listen else None,
            mail_domain=env.get("LIAISON_MAIL_DOMAIN") or "liaison.local",
            outbound_smtp=parse_host_port(outbound, "LIAISON_OUTBOUND_SMTP") if outbound else None,
            imap_url=env.get("LIAISON_IMAP_URL") or None,
            workers_inline=_flag(env.get("LIAISON_WORKERS_INLINE"), True,
                                 "LIAISON_WORKERS_INLINE"),
            psa_agreement_sync_hour=_hour(env.get("LIAISON_PSA_AGREEMENT_SYNC_HOUR"), 2),
            worker_lease_seconds=_seconds(env.get("LIAISON_WORKER_LEASE_SECONDS"),
                                          "LIAISON_WORKER_LEASE_SECONDS", 10.0),
            lock_timeout_seconds=_seconds(env.get("LIAISON_LOCK_TIMEOUT_SECONDS"),
                                          "LIAISON_LOCK_TIMEOUT_SECONDS", 5.0),
            server_threads=_positive(env, "LIAISON_THREADS", 8),
            db_pool_size=_positive(env, "LIAISON_DB_POOL_SIZE", None),
            extra={k: v for k, v in env.items() if k.startswith("LIAISON_")},
        )

    def resolved(self) -> Settings:
        """Creates the instance folder and fills the secret key (generated once, kept on disk)."""
        self.instance_path.mkdir(parents=True, exist_ok=True)
        if self.secret_key:
            return self
        key_file = self.instance_path / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            key_file.chmod(0o600)
        return replace(self, secret_key=key_file.read_text(encoding="utf-8").strip())
