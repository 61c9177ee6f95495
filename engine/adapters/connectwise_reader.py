"""What the inbound poller reads from ConnectWise Manage (the `PsaReader` of
engine.services.psa_inbound), through the channel's HTTP client (`get`, `get_all` paging
through bare JSON arrays). Reads only: every change on ConnectWise's side goes through the
channel and the outbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime

TICKET_FIELDS = ("id,summary,externalXRef,status,closedFlag,company,board,_info")
PAGE = 250
STATUS_TTL = 600.0  # seconds a board's statuses are kept


def _bracketed(moment: datetime) -> str:
    return "[" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "]"


class ConnectWiseReader:
    def __init__(self, client) -> None:
        self.client = client
        self._resolved: tuple[float, set[str]] | None = None

    def changed_tickets(self, since: datetime) -> list[dict]:
        """Tickets updated after `since`, oldest change first, every page."""
        return self.client.get_all("/service/tickets",
                                   conditions=f"lastUpdated > {_bracketed(since)}",
                                   order_by="lastUpdated asc", page_size=PAGE)

    def ticket(self, ticket_id: str) -> dict | None:
        from engine.adapters.connectwise_client import ApiError

        try:
            return self.client.get(f"/service/tickets/{int(ticket_id)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def notes(self, ticket_id: str, after: int = 0) -> list[dict]:
        return self.client.get_all(f"/service/tickets/{int(ticket_id)}/notes",
                                   conditions=f"id > {int(after)}" if after else None,
                                   order_by="id asc", page_size=PAGE)

    def ticket_configurations(self, ticket_id: str) -> list[dict]:
        return self.client.get_all(f"/service/tickets/{int(ticket_id)}/configurations",
                                   page_size=PAGE)

    def resolved_statuses(self) -> set[str]:
        """Names (lower case) of the statuses any board marks resolved (escalation status
        `Resolved`), kept for a few minutes."""
        if self._resolved and self._resolved[0] > time.monotonic():
            return self._resolved[1]
        names: set[str] = set()
        for board in self.client.get_all("/service/boards", fields="id,name"):
            for status in self.client.get_all(f"/service/boards/{int(board['id'])}/statuses"):
                if str(status.get("escalationStatus") or "").lower() == "resolved":
                    names.add(str(status.get("name") or "").lower())
        self._resolved = (time.monotonic() + STATUS_TTL, names)
        return names

    def companies(self) -> list[dict]:
        return self.client.get_all("/company/companies", fields="id,identifier,name")

    def configurations(self) -> list[dict]:
        return self.client.get_all("/company/configurations")
