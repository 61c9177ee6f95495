"""A real IMAP server for the tests: Debian's dovecot on loopback ports, started from a
configuration written here (installed with apt-get when missing and possible; the tests are
skipped with the reason otherwise). Optionally with TLS: a private CA and a server
certificate it signed, generated with the openssl command for each run. No tests here."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "imap-secret"


@dataclass(frozen=True)
class Dovecot:
    port: int  # IMAP (STARTTLS offered when tls)
    tls_port: int | None = None  # IMAPS
    ca_file: str | None = None  # the CA that signed the server's certificate
    log_file: Path | None = None

    def logins(self, user: str) -> list[str]:
        """The server's log lines of `user`'s logins (they say TLS when it was used)."""
        text = self.log_file.read_text(errors="replace") if self.log_file else ""
        return [line for line in text.splitlines() if f"Login: user=<{user}>" in line]


def unavailable() -> str | None:
    """Why dovecot cannot run here, or None once it is installed."""
    if os.path.exists(DOVECOT):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "dovecot is not installed and cannot be installed here (needs root and apt-get)"
    for command in (["apt-get", "install", "-y", "-q", "dovecot-imapd"],
                    ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "dovecot-imapd"]):
        subprocess.run(command, capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if os.path.exists(DOVECOT):
            return None
    return "apt-get could not install dovecot-imapd (no package index reachable?)"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 / localhost signed by it:
    (ca.pem, server.pem, server.key). Extensions as Python 3.13's strict checks want them."""
    (folder / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n")
    (folder / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=liaison test CA",
             "-extensions", "v3_ca", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=folder)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2",
             "-extfile", "server.ext", cwd=folder)
    for name in ("server.pem", "server.key"):
        (folder / name).chmod(0o644)  # read by dovecot's own user when we run as root
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


def _users(folder: Path) -> tuple[str, str, str]:
    if os.geteuid() == 0:  # dovecot refuses mail access as root: use its own system user
        mail_user, internal, login_user = "dovecot", "dovecot", "dovenull"
    else:
        mail_user = internal = login_user = pwd.getpwuid(os.getuid()).pw_name
    shutil.chown(folder / "mail", mail_user, mail_user)
    return mail_user, internal, login_user


def _config(folder: Path, port: int, tls_port: int | None) -> str:
    mail_user, internal, login_user = _users(folder)
    ssl = f"ssl = yes\nssl_cert = <{folder}/server.pem\nssl_key = <{folder}/server.key\n" \
        if tls_port else "ssl = no\n"
    return f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
default_internal_user = {internal}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={folder}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port or 0}
  }}
}}
"""


def _listening(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@contextmanager
def running_dovecot(tls: bool = False) -> Iterator[Dovecot | str]:
    """Yields the running server, or the reason it could not start (for pytest.skip)."""
    reason = unavailable()
    if reason:
        yield reason
        return
    # Not under pytest's private tmp: dovecot's mail processes run as another user.
    folder = Path(tempfile.mkdtemp(prefix="liaison-dovecot-"))
    for name in ("run", "state", "mail"):
        (folder / name).mkdir()
    folder.chmod(0o755)
    ca_file = make_certificates(folder)[0] if tls else None
    port, tls_port = free_port(), free_port() if tls else None
    (folder / "dovecot.conf").write_text(_config(folder, port, tls_port))
    with (folder / "startup.log").open("w") as log:
        server = subprocess.Popen([DOVECOT, "-F", "-c", str(folder / "dovecot.conf")],
                                  stdout=subprocess.DEVNULL, stderr=log)
        try:
            if not all(_listening(p) for p in (port, tls_port) if p):
                yield f"dovecot did not start: {(folder / 'startup.log').read_text()[:300]}"
            else:
                yield Dovecot(port, tls_port, str(ca_file) if ca_file else None,
                              folder / "dovecot.log")
        finally:
            server.terminate()
            server.wait(15)
            shutil.rmtree(folder, ignore_errors=True)
