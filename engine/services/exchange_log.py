"""The global exchange log as integration managers read it: its total and its CSV export."""

from __future__ import annotations

from engine.services.views import exchange_view

CSV_COLUMNS = ("id", "at", "task_id", "provider", "request_type", "direction", "channel",
               "status", "attempts", "error")


def _with_provider(uow, filters: dict, provider: str | None) -> dict:
    filters = {k: v for k, v in (filters or {}).items() if k != "provider"}
    if provider:
        row = uow.repo.provider_by_name(provider)
        filters["provider_id"] = row.id if row else -1
    return filters


def count_exchanges(uow, filters: dict, provider: str | None = None) -> int:
    """How many exchanges match the log's filters."""
    return uow.repo.count_exchanges(_with_provider(uow, filters, provider))


def exchanges_before(uow, filters: dict, provider: str | None, before_id: int | None,
                     limit: int = 1000) -> list[dict]:
    """One page of the export, newest first, below `before_id`."""
    rows = uow.repo.exchanges_before(_with_provider(uow, filters, provider), before_id, limit)
    return [exchange_view(e) for e in rows]


def export_rows(core, filters: dict, provider: str | None, page: int = 1000):
    """Every matching exchange, page by page (each page its own short unit of work)."""
    before = None
    while True:
        rows = core.run(exchanges_before, filters, provider, before, page)
        yield from rows
        if len(rows) < page:
            return
        before = rows[-1]["id"]
