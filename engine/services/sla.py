"""Provider SLAs: targets per provider (and priority), and the weekly figures of each provider
(count, p50, p90, breaches) that the SLA page charts and REST and CSV export.

The rules (what starts and stops a clock, which target applies) are in engine.domain.sla;
breaches found while a clock runs become `sla_breach` events (engine.services.sla_breaches).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.domain import sla
from engine.exceptions import InvalidInput, NotFound

MAX_WEEKS = 104
FIGURE_COLUMNS = ("provider", "week", "week_start", "metric", "target_minutes", "count",
                  "completed", "p50_seconds", "p90_seconds", "breaches")


def targets_by_provider(uow, provider_id: int | None = None) -> dict[int, list[sla.Target]]:
    result: dict[int, list[sla.Target]] = {}
    for row in uow.repo.sla_targets(provider_id):
        result.setdefault(row.provider_id, []).append(sla.Target(row.metric, row.priority,
                                                                  row.minutes))
    return result


def get_targets(uow, provider_id: int) -> dict:
    """A provider's SLA targets."""
    provider = uow.repo.provider(provider_id)
    return {"provider_id": provider.id, "provider": provider.name,
            "targets": [t.as_dict() for t in targets_by_provider(uow, provider.id).get(provider.id, [])]}


def set_targets(uow, provider_id: int, items: object) -> dict:
    """Replaces a provider's targets; zero, negative or absurd minutes are refused (422)."""
    provider = uow.repo.provider(provider_id)
    targets = sla.parse_targets(items)
    uow.repo.replace_sla_targets(provider.id, [
        {"metric": t.metric, "priority": t.priority, "minutes": t.minutes} for t in targets])
    uow.commit()
    return get_targets(uow, provider.id)


def clocks_since(uow, since: datetime, provider_id: int | None = None,
                 open_only: bool = False) -> list[tuple]:
    """Every clock started since `since` (of open tasks only, if so asked), with the task's
    status and current provider: [(Clock, task open?, provider now holding the task)]."""
    starts = uow.repo.sla_clock_starts(since, provider_id, open_only)
    if not starts:
        return []
    task_ids = sorted({row[0] for row in starts}) if open_only else None
    stops = [sla.Stop(task_id, provider, "acknowledge" if kind == "Acknowledgement" else
                      "resolve", at)
             for task_id, provider, kind, at, payload in uow.repo.sla_answers(since, task_ids)
             if kind == "Acknowledgement" or (payload or {}).get("solution")]
    stops += [sla.Stop(task_id, provider, "resolve", at)
              for task_id, provider, at in uow.repo.sla_closures(since, task_ids)]
    clocks = sla.build_clocks([(t, p, prio, at) for t, p, prio, at, _, _ in starts], stops)
    return [(clock, status == "open", holder)
            for clock, (_, _, _, _, status, holder) in zip(clocks, starts, strict=True)]


def _window(now: datetime, weeks: int) -> list:
    this_week = sla.week_of(now)
    return [this_week - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def _provider_filter(uow, provider: str | None):
    if not provider:
        return None
    row = uow.repo.provider_by_name(provider)
    if row is None:
        raise NotFound(f"provider {provider!r} not found")
    return row


def figures(uow, weeks: int = 12, provider: str | None = None,
            priority: str | None = None) -> dict:
    """Per provider and week (by when the clock started): count, completed, p50, p90 and
    breaches, for both metrics. Providers with targets or clocks in the window are listed."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise InvalidInput(f"weeks must be between 1 and {MAX_WEEKS}", field="weeks")
    if priority and priority not in sla.PRIORITIES:
        raise InvalidInput(f"priority must be one of {', '.join(sla.PRIORITIES)}",
                           field="priority")
    only = _provider_filter(uow, provider)
    now = uow.context.clock.now()
    mondays = _window(now, weeks)
    since = datetime.combine(mondays[0], datetime.min.time(), tzinfo=now.tzinfo)
    targets = targets_by_provider(uow, only.id if only else None)
    clocks = [c for c, _, _ in clocks_since(uow, since, only.id if only else None)
              if not priority or c.priority == priority]
    table = sla.figures(sla.measure(clocks, targets, now), mondays)
    names = {p.id: p.name for p in uow.repo.providers()}
    provider_ids = sorted({key[0] for key in table} | set(targets),
                          key=lambda pid: names.get(pid, ""))
    rows = []
    for provider_id in provider_ids:
        for monday in mondays:
            for metric in sla.METRICS:
                default = sla.target_for(targets.get(provider_id, ()), metric, priority or "")
                empty = {"count": 0, "completed": 0, "p50_seconds": None, "p90_seconds": None,
                         "breaches": 0}
                rows.append({"provider": names.get(provider_id), "week": sla.iso_week(monday),
                             "week_start": monday.isoformat(), "metric": metric,
                             "target_minutes": default.minutes if default else None,
                             **table.get((provider_id, monday, metric), empty)})
    return {"from": since.isoformat(), "until": now.isoformat(), "weeks": weeks,
            "priority": priority, "percentiles": "nearest-rank", "rows": rows}


def breach_badges(uow, task_ids: list[int]) -> dict[int, list[str]]:
    """The missed targets of each task, for the inbox badge."""
    badges: dict[int, list[str]] = {}
    for task_id, _, metric in sorted(uow.repo.sla_breach_keys(task_ids)):
        badges.setdefault(task_id, []).append(metric)
    return badges


def recent_breaches(uow, provider: str | None = None, limit: int = 100) -> list[dict]:
    only = _provider_filter(uow, provider)
    names = {p.id: p.name for p in uow.repo.providers()}
    return [{"id": b.id, "task_id": b.task_id, "provider": names.get(b.provider_id),
             "metric": b.metric, "priority": b.priority or None,
             "target_minutes": b.target_minutes, "started_at": b.started_at.isoformat(),
             "due_at": b.due_at.isoformat(), "overdue_seconds": b.overdue_seconds,
             "detected_at": b.detected_at.isoformat()}
            for b in uow.repo.sla_breaches(only.id if only else None, limit)]
