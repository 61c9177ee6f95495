"""IMAP poller (LIAISON_IMAP_URL): new mail into the inbound mail table, then tidied away.

The mailbox position (UIDVALIDITY and the last UID stored) is saved in the same transaction
as each message, so a restart or crash never stores a message twice and never skips one.
Marking (\\Seen) or moving (LIAISON_IMAP_MOVE_TO) on the server afterwards is tidying only;
a mailbox whose UIDVALIDITY changed is read again and the Message-ID check drops repeats.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from engine.exceptions import InvalidInput

log = logging.getLogger(__name__)

BATCH = 50

ImapPosition = Callable[[str, int], int]
ImapStore = Callable[[str, int, "bytes | None", int], "int | None"]


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    user: str
    password: str
    folder: str
    tls: bool

    @property
    def key(self) -> str:
        """Names the mailbox for its stored position (no password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"

    @classmethod
    def parse(cls, url: str) -> ImapTarget:
        """imap://user:pass@host:port/FOLDER (imaps:// for TLS); FOLDER defaults to INBOX."""
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise InvalidInput("LIAISON_IMAP_URL must look like imap://user:pass@host:port/INBOX",
                               field="LIAISON_IMAP_URL")
        tls = parts.scheme == "imaps"
        return cls(host=parts.hostname, port=parts.port or (993 if tls else 143),
                   user=unquote(parts.username), password=unquote(parts.password or ""),
                   folder=unquote(parts.path.lstrip("/")) or "INBOX", tls=tls)


class ImapPoller:
    """Polls one mailbox. `position(mailbox, uidvalidity)` answers the last UID stored;
    `store(mailbox, uid, raw, size)` stores one message (raw None: over `max_bytes`) and
    advances the position in the same transaction. The composition root passes both."""

    def __init__(self, target: ImapTarget, position: ImapPosition, store: ImapStore, *,
                 max_bytes: int, interval: float = 30.0, move_to: str | None = None) -> None:
        self.target, self.position, self.store = target, position, store
        self.max_bytes, self.interval, self.move_to = max_bytes, interval, move_to

    def _connect(self):
        from imapclient import IMAPClient
        context = ssl.create_default_context() if self.target.tls else None
        client = IMAPClient(self.target.host, port=self.target.port, ssl=self.target.tls,
                            ssl_context=context, timeout=30)
        client.login(self.target.user, self.target.password)
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
            try:
                client.logout()
            except Exception:  # the connection may already be gone; nothing to tidy
                log.debug("IMAP logout failed", exc_info=True)

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
        log.info("IMAP poller on %s every %ss", self.target.key, self.interval)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the server may be down; try again next round
                log.warning("IMAP poll of %s failed: %s", self.target.key, exc)
            stop.wait(self.interval)
