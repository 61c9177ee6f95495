"""`liaison serve --workers N`: several server processes on one port, for several cores.

Python runs one thread at a time per process, so a second core needs a second process.
gunicorn's pre-forking server runs N worker processes on one port, each with a listening
socket of its own (SO_REUSEPORT: the kernel hashes each connection to one), restarts a worker
that dies and stops them gracefully. Each
worker builds its own Core after the fork (no connection or thread crosses a fork) and
serves with `LIAISON_THREADS` threads (gthread). All state is in the database, so the
processes need nothing from each other; with inline workers each also delivers the outbox,
sharing it through row leases.
"""

from __future__ import annotations

import threading

from gunicorn.app.base import BaseApplication

from engine.config import Settings
from engine.exceptions import LiaisonError


class _LiaisonServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict) -> None:
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        """Runs in each worker process, after the fork."""
        from app import create_app
        from engine.core import Core
        from engine.worker import start_inline

        core = Core(self.settings)
        if core.settings.workers_inline:
            start_inline(core, threading.Event())
        return create_app(core=core)


def serve_processes(settings: Settings, host: str, port: int, workers: int) -> None:
    if settings.workers_inline and (settings.smtp_listen or settings.imap_url):
        # one SMTP port and one IMAP mailbox cannot be served by every process
        raise LiaisonError("with --workers, run mail intake apart: set LIAISON_WORKERS_INLINE=0 "
                           "and start `liaison worker` and `liaison smtp`")
    print(f"liaison serving on http://{host}:{port} with {workers} processes "
          f"(public URL {settings.public_url})", flush=True)
    _LiaisonServer(settings, {
        "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread",
        "threads": settings.server_threads, "proc_name": "liaison", "timeout": 120,
        "graceful_timeout": 20, "keepalive": 5, "accesslog": None, "errorlog": "-",
        "loglevel": "warning", "forwarded_allow_ips": "127.0.0.1",
        # each process listens on a socket of its own (SO_REUSEPORT): the kernel hashes each
        # new connection to one of them; on one shared socket the first idle process took most
        "reuse_port": True,
    }).run()
