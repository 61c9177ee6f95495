"""IMAP poller (LIAISON_IMAP_URL): new mail into the inbound mail table, then tidied away.

The mailbox position (UIDVALIDITY and the last UID stored) is saved in the same transaction
as each message, so a restart or crash never stores a message twice and never skips one.
Marking (\\Seen) or moving (LIAISON_IMAP_MOVE_TO) on the server afterwards is tidying only;
a mailbox whose UIDVALIDITY changed is read again, and what was read before is stored once.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from engine.exceptions import InvalidInput

log = logging.getLogger(__name__)

BATCH = 50

ImapPosition = Callable[[str, int], int]
ImapStore = Callable[[str, int, "bytes | None", int], "int | None"]


URL_FORM = "imap://user:pass@host:port/INBOX (imaps:// for TLS, imap://…?starttls=1)"
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(f"LIAISON_IMAP_URL {problem}; it must look like {URL_FORM}",
                        field="LIAISON_IMAP_URL")


def _starttls(scheme: str, query: str) -> bool:
    """The `starttls` parameter; any other parameter is refused, so that a misspelt one
    never leaves the connection unencrypted."""
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"starttls"})
    if unknown:
        raise _invalid(f"has an unknown parameter {unknown[0]!r}")
    value = (params.get("starttls") or ["0"])[-1].strip().lower()
    if value not in TRUE | FALSE:
        raise _invalid(f"has starttls={value!r} (use 1 or 0)")
    if value in TRUE and scheme == "imaps":
        raise _invalid("asks for STARTTLS on imaps://, which is TLS from the start")
    return value in TRUE


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    password: str
    folder: str
    security: str  # "tls" (imaps://), "starttls" (imap://…?starttls=1) or "plain"

    @property
    def key(self) -> str:
        """Names the mailbox for its stored position (no password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"

    @classmethod
    def parse(cls, url: str) -> ImapTarget:
        """imap://user:pass@host:port/FOLDER; imaps:// for TLS from the start (port 993),
        imap://…?starttls=1 to upgrade port 143 with STARTTLS. FOLDER defaults to INBOX."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise _invalid("is incomplete")
        try:
            port = parts.port
        except ValueError:
            raise _invalid("has an invalid port") from None
        starttls = _starttls(parts.scheme, parts.query)
        security = "tls" if parts.scheme == "imaps" else "starttls" if starttls else "plain"
        return cls(host=parts.hostname, port=port or (993 if security == "tls" else 143),
                   user=unquote(parts.username), password=unquote(parts.password or ""),
                   folder=unquote(parts.path.lstrip("/")) or "INBOX", security=security)


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificates are verified, host name included; `ca_file` (PEM) names the CA to trust
    instead of the system's, for a server whose certificate a private CA signed."""
    return ssl.create_default_context(cafile=ca_file)


class ImapPoller:
    """Polls one mailbox. `position(mailbox, uidvalidity)` answers the last UID stored;
    `store(mailbox, uid, raw, size)` stores one message (raw None: over `max_bytes`) and
    advances the position in the same transaction. The composition root passes both."""

    def __init__(self, target: ImapTarget, position: ImapPosition, store: ImapStore, *,
                 max_bytes: int, interval: float = 30.0, move_to: str | None = None,
                 ca_file: str | None = None) -> None:
        self.target, self.position, self.store = target, position, store
        self.max_bytes, self.interval, self.move_to = max_bytes, interval, move_to
        self.ca_file = ca_file

    def _connect(self):
        """Logs in, never before TLS is up when the URL asks for it (no fallback to plain)."""
        from imapclient import IMAPClient
        secure = self.target.security != "plain"
        context = tls_context(self.ca_file) if secure else None
        client = IMAPClient(self.target.host, port=self.target.port,
                            ssl=self.target.security == "tls", ssl_context=context, timeout=30)
        try:
            if self.target.security == "starttls":
                client.starttls(context)  # raises when the server does not offer STARTTLS
            client.login(self.target.user, self.target.password)
        except BaseException:
            _close(client)
            raise
        return client

    def poll_once(self) -> int:
        """Stores every message newer than the stored position; returns how many."""
        client = self._connect()
        try:
            selected = client.select_folder(self.target.folder)
            last = self.position(self.target.key, int(selected[b"UIDVALIDITY"]))
            # "n:*" always matches the newest message, even when its UID is below n.
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
            for start in range(0, len(uids), BATCH):
                self._take(client, uids[start:start + BATCH])
            return len(uids)
        finally:
            _close(client)

    def _take(self, client, uids: list[int]) -> None:
        sizes = client.fetch(uids, ["RFC822.SIZE"])
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            raw = None
            if size <= self.max_bytes:
                fetched = client.fetch([uid], ["BODY.PEEK[]"])  # PEEK: \Seen only once stored
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if raw is None:
                    continue  # expunged meanwhile
            self.store(self.target.key, uid, raw, size)
            self._tidy(client, uid)

    def _tidy(self, client, uid: int) -> None:
        if not self.move_to:
            client.add_flags([uid], [b"\\Seen"])
            return
        if not client.folder_exists(self.move_to):
            client.create_folder(self.move_to)
        if client.has_capability("MOVE"):
            client.move([uid], self.move_to)
        else:
            client.copy([uid], self.move_to)
            client.delete_messages([uid])
            if client.has_capability("UIDPLUS"):
                client.uid_expunge([uid])
            else:
                client.expunge()

    def run_forever(self, stop: threading.Event) -> None:
        log.info("IMAP poller on %s (%s) every %ss", self.target.key, self.target.security,
                 self.interval)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the server may be down; try again next round
                log.warning("IMAP poll of %s failed: %s", self.target.key, exc)
            stop.wait(self.interval)


def _close(client) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone; nothing to tidy
        log.debug("IMAP logout failed", exc_info=True)
