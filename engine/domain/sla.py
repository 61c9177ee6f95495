"""Provider SLAs as pure rules: targets, the clocks they measure, weekly figures.

A *clock* runs per task and provider from the task's first Submit Request/Out to that provider.
Its *acknowledge* time ends at the first Acknowledgement/In (or, failing one, at resolution:
a provider that resolves has acknowledged); its *resolve* time ends at the first
Reassigned/In with a solution, or when the task is closed (Closed/Out, or the closure itself).
A clock still running counts its time up to now. A target applies to a priority, or to every
priority without a target of its own (`priority` ""). Percentiles are nearest-rank over the
clocks that stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engine.exceptions import InvalidInput

METRICS = ("acknowledge", "resolve")
PRIORITIES = ("low", "normal", "high", "critical")
MAX_MINUTES = 366 * 24 * 60  # a target longer than a year is a typo, not a contract


@dataclass(frozen=True)
class Target:
    metric: str
    priority: str  # "" = every priority without a target of its own
    minutes: int

    def as_dict(self) -> dict:
        return {"metric": self.metric, "priority": self.priority or None, "minutes": self.minutes}


def _check_target(index: int, item: object) -> Target:
    where = f"targets[{index}]"
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    metric, priority, minutes = item.get("metric"), item.get("priority") or "", item.get("minutes")
    if metric not in METRICS:
        raise InvalidInput(f"{where}.metric must be one of {', '.join(METRICS)}",
                           field=f"{where}.metric")
    if priority and priority not in PRIORITIES:
        raise InvalidInput(f"{where}.priority must be null or one of {', '.join(PRIORITIES)}",
                           field=f"{where}.priority")
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidInput(f"{where}.minutes must be a whole number of minutes",
                           field=f"{where}.minutes")
    if not 0 < minutes <= MAX_MINUTES:
        raise InvalidInput(f"{where}.minutes must be between 1 and {MAX_MINUTES:,} minutes "
                           f"(a year); got {minutes}", field=f"{where}.minutes")
    return Target(metric, priority, minutes)


def parse_targets(items: object) -> list[Target]:
    """Checks a list of `{"metric", "priority"?, "minutes"}`; a bad value names its field."""
    if not isinstance(items, list):
        raise InvalidInput("targets must be a list", field="targets")
    targets, seen = [], set()
    for index, item in enumerate(items):
        target = _check_target(index, item)
        key = (target.metric, target.priority)
        if key in seen:
            raise InvalidInput(f"targets[{index}] repeats {target.metric} for "
                               f"{target.priority or 'every priority'}", field=f"targets[{index}]")
        seen.add(key)
        targets.append(target)
    return targets


def target_for(targets: Iterable[Target], metric: str, priority: str) -> Target | None:
    """The priority's own target, else the default one, else None."""
    default = None
    for target in targets:
        if target.metric == metric and target.priority == priority:
            return target
        if target.metric == metric and not target.priority:
            default = target
    return default


@dataclass(frozen=True)
class Clock:
    task_id: int
    provider_id: int
    priority: str
    started_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None

    def stopped_at(self, metric: str) -> datetime | None:
        if metric == "resolve":
            return self.resolved_at
        if self.acknowledged_at and self.resolved_at:
            return min(self.acknowledged_at, self.resolved_at)
        return self.acknowledged_at or self.resolved_at


@dataclass(frozen=True)
class Stop:
    """Something that stops a clock: `kind` "acknowledge" or "resolve"; `provider_id` None when
    the answer came from a trusted internal caller (it stops every provider's clock)."""

    task_id: int
    provider_id: int | None
    kind: str
    at: datetime


def build_clocks(starts: Iterable[tuple[int, int, str, datetime]], stops: Iterable[Stop]
                 ) -> list[Clock]:
    """Clocks from their starts `(task_id, provider_id, priority, started_at)` and the stops."""
    by_task: dict[int, list[Stop]] = {}
    for stop in stops:
        by_task.setdefault(stop.task_id, []).append(stop)
    clocks = []
    for task_id, provider_id, priority, started in starts:
        mine = [s for s in by_task.get(task_id, ()) if s.at >= started
                and s.provider_id in (provider_id, None)]
        first = {kind: min((s.at for s in mine if s.kind == kind), default=None)
                 for kind in METRICS}
        clocks.append(Clock(task_id, provider_id, priority or "", started, first["acknowledge"],
                            first["resolve"]))
    return clocks


@dataclass(frozen=True)
class Measurement:
    clock: Clock
    metric: str
    seconds: int
    done: bool
    target: Target | None

    @property
    def breached(self) -> bool:
        return self.target is not None and self.seconds > self.target.minutes * 60

    @property
    def due_at(self) -> datetime | None:
        if self.target is None:
            return None
        return self.clock.started_at + timedelta(minutes=self.target.minutes)


def measure(clocks: Iterable[Clock], targets: dict[int, list[Target]], now: datetime
            ) -> list[Measurement]:
    """Both metrics of every clock, against the provider's targets."""
    result = []
    for clock in clocks:
        for metric in METRICS:
            stopped = clock.stopped_at(metric)
            seconds = int(((stopped or now) - clock.started_at).total_seconds())
            result.append(Measurement(clock, metric, max(seconds, 0), stopped is not None,
                                      target_for(targets.get(clock.provider_id, ()), metric,
                                                 clock.priority)))
    return result


def week_of(moment: datetime | date) -> date:
    """The Monday (UTC) of the week a moment falls in."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def percentile(values: Sequence[int], fraction: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least `fraction` of them at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def figures(measurements: Iterable[Measurement], weeks: Sequence[date]) -> dict:
    """{(provider_id, monday, metric): {count, completed, p50_seconds, p90_seconds, breaches}}."""
    buckets: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        buckets.setdefault((m.clock.provider_id, week_of(m.clock.started_at), m.metric), []).append(m)
    providers = {key[0] for key in buckets}
    result = {}
    for provider_id in providers:
        for monday in weeks:
            for metric in METRICS:
                items = buckets.get((provider_id, monday, metric), [])
                done = [m.seconds for m in items if m.done]
                result[(provider_id, monday, metric)] = {
                    "count": len(items), "completed": len(done),
                    "p50_seconds": percentile(done, 0.5), "p90_seconds": percentile(done, 0.9),
                    "breaches": sum(1 for m in items if m.breached)}
    return result
