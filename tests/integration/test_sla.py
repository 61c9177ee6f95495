"""Provider SLAs: weekly figures against hand-computed cases (also after a restart), and
breaches that fire once per target per task, starting the group's bound process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from engine.adapters import orm
from engine.exceptions import InvalidInput
from engine.services import admin, models, queries, schedule, sla, tasks
from engine.services.inbound import Inbound, acknowledge_external, reassign_external
from engine.worker import Worker
from tests.conftest import make_core, seed
from tests.fakes import FakeClock

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # ISO week 2026-W49
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn"
CARRIER = Inbound(provider="Carrier", channel="email")
TARGETS = [{"metric": "acknowledge", "minutes": 60},
           {"metric": "acknowledge", "priority": "high", "minutes": 30},
           {"metric": "resolve", "minutes": 480}]


def hours(h: float) -> datetime:
    return MONDAY + timedelta(hours=h)


def move(core, task_id: int, request_type: str, direction: str, when: datetime) -> None:
    """Puts a recorded exchange of the scenario at its hand-picked time."""
    with core.db.begin() as connection:
        connection.execute(update(orm.Exchange).where(
            orm.Exchange.task_id == task_id, orm.Exchange.request_type == request_type,
            orm.Exchange.direction == direction).values(created_at=when))


def move_note(core, task_id: int, kind: str, when: datetime) -> None:
    with core.db.begin() as connection:
        connection.execute(update(orm.TaskNote).where(
            orm.TaskNote.task_id == task_id, orm.TaskNote.kind == kind).values(created_at=when))


def new_task(core, seeded, title: str, priority: str = "normal") -> int:
    task = core.run(tasks.create_task, seeded["ticket"]["id"], title, "", group="Carrier Group",
                    priority=priority)
    return task["id"]


def scenario(core, seeded) -> dict:
    """Week 49: T1 acked after 20 min, resolved after 4 h; T2 acked after 90 min, closed after
    10 h; T3 (high) acked after 40 min, still open. Week 50: T4 acked after 10 min."""
    core.run(sla.set_targets, seeded["provider"]["id"], TARGETS)
    t1, t2, t3, t4 = (new_task(core, seeded, "T1"), new_task(core, seeded, "T2"),
                      new_task(core, seeded, "T3", "high"), new_task(core, seeded, "T4"))
    for task_id, reference in ((t1, "C-1"), (t2, "C-2"), (t3, "C-3"), (t4, "C-4")):
        core.run(acknowledge_external, task_id, reference, CARRIER)
    core.run(reassign_external, t1, solution="Line card replaced", source=CARRIER)
    core.run(tasks.close_task, t2, "Fixed by the carrier")
    for task_id, start, ack in ((t1, 9, 9 + 20 / 60), (t2, 10, 11.5), (t3, 11, 11 + 40 / 60),
                                (t4, 7 * 24 + 9, 7 * 24 + 9 + 10 / 60)):
        move(core, task_id, "Submit Request", "Out", hours(start))
        move(core, task_id, "Acknowledgement", "In", hours(ack))
    move(core, t1, "Reassigned", "In", hours(13))
    move(core, t2, "Closed", "Out", hours(20))
    move_note(core, t2, "closure", hours(20))
    return {"T1": t1, "T2": t2, "T3": t3, "T4": t4}


@pytest.fixture
def clocked(any_db_url, tmp_path, mailer):
    clock = FakeClock(MONDAY + timedelta(days=7, hours=9, minutes=10))
    core = make_core(any_db_url, tmp_path, mailer, clock)
    yield core
    core.close()


def by_week(result: dict) -> dict:
    return {(r["week"], r["metric"]): {k: r[k] for k in ("count", "completed", "p50_seconds",
                                                         "p90_seconds", "breaches")}
            for r in result["rows"] if r["provider"] == "Carrier"}


EXPECTED = {
    # acknowledge: 20, 90, 40 min -> nearest-rank p50 = 40 min, p90 = 90 min; T2 (60) and
    # T3 (high: 30) late
    ("2026-W49", "acknowledge"): {"count": 3, "completed": 3, "p50_seconds": 2400,
                                  "p90_seconds": 5400, "breaches": 2},
    # resolve: 4 h and 10 h done (p50 4 h, p90 10 h); T2 (10 h > 8 h) and T3 (open for days) late
    ("2026-W49", "resolve"): {"count": 3, "completed": 2, "p50_seconds": 14400,
                              "p90_seconds": 36000, "breaches": 2},
    ("2026-W50", "acknowledge"): {"count": 1, "completed": 1, "p50_seconds": 600,
                                  "p90_seconds": 600, "breaches": 0},
    ("2026-W50", "resolve"): {"count": 1, "completed": 0, "p50_seconds": None,
                              "p90_seconds": None, "breaches": 0},
}


def test_weekly_figures_match_hand_computed_values_also_after_a_restart(
        clocked, any_db_url, tmp_path, mailer):
    seeded = seed(clocked)
    scenario(clocked, seeded)

    figures = clocked.run(sla.figures, 2)
    assert by_week(figures) == EXPECTED
    assert figures["percentiles"] == "nearest-rank"
    week = next(r for r in figures["rows"] if r["week"] == "2026-W49"
                and r["metric"] == "acknowledge")
    assert week["week_start"] == "2026-11-30" and week["target_minutes"] == 60

    restarted = make_core(any_db_url, tmp_path, mailer, FakeClock(clocked.clock.now()))
    try:
        assert by_week(restarted.run(sla.figures, 2)) == EXPECTED
        high = by_week(restarted.run(sla.figures, 2, priority="high"))
        assert high[("2026-W49", "acknowledge")] == {
            "count": 1, "completed": 1, "p50_seconds": 2400, "p90_seconds": 2400, "breaches": 1}
    finally:
        restarted.close()


@pytest.mark.parametrize(("targets", "field"), [
    ([{"metric": "acknowledge", "minutes": 0}], "targets[0].minutes"),
    ([{"metric": "resolve", "minutes": 60}, {"metric": "acknowledge", "minutes": -5}],
     "targets[1].minutes"),
    ([{"metric": "acknowledge", "minutes": 10_000_000}], "targets[0].minutes"),
    ([{"metric": "acknowledge", "minutes": 1.5}], "targets[0].minutes"),
    ([{"metric": "respond", "minutes": 60}], "targets[0].metric"),
    ([{"metric": "resolve", "priority": "urgent", "minutes": 60}], "targets[0].priority"),
    ([{"metric": "resolve", "minutes": 60}, {"metric": "resolve", "minutes": 90}], "targets[1]"),
])
def test_bad_targets_are_refused_naming_the_field_and_change_nothing(core, seeded, targets,
                                                                     field):
    provider_id = seeded["provider"]["id"]
    core.run(sla.set_targets, provider_id, [{"metric": "resolve", "minutes": 480}])

    with pytest.raises(InvalidInput) as refused:
        core.run(sla.set_targets, provider_id, targets)

    assert refused.value.field == field
    assert core.run(sla.get_targets, provider_id)["targets"] == [
        {"metric": "resolve", "priority": None, "minutes": 480}]


def bind_escalation(core) -> None:
    core.run(models.deploy_process_model, (FIXTURES / "sla_escalation.bpmn").read_bytes(),
             "sla_escalation.bpmn")
    group = core.run(queries.list_groups)
    processes = next(g for g in group if g["name"] == "Carrier Group")["processes"]
    core.run(admin.update_group, "Carrier Group", True, "Carrier",
             {**processes, "sla_breach": "sla_escalation"})


def count(core, entity, **where) -> int:
    with core.sessions() as session:
        query = select(func.count()).select_from(entity)
        for name, value in where.items():
            query = query.where(getattr(entity, name) == value)
        return session.scalar(query)


def test_a_breach_starts_the_bound_process_once_also_after_a_restart(
        any_db_url, tmp_path, mailer):
    clock = FakeClock()
    core = make_core(any_db_url, tmp_path, mailer, clock)
    try:
        seeded = seed(core)
        bind_escalation(core)
        core.run(sla.set_targets, seeded["provider"]["id"],
                 [{"metric": "acknowledge", "minutes": 60}])
        late = new_task(core, seeded, "Nobody answers")
        answered = new_task(core, seeded, "Answered in time")
        core.run(acknowledge_external, answered, "C-9", CARRIER)
        for task_id in (late, answered):
            move(core, task_id, "Submit Request", "Out", clock.now())

        clock.advance(minutes=59)
        assert Worker(core).run_jobs() >= 1
        assert count(core, orm.SlaBreach) == 0

        clock.advance(minutes=2)
        Worker(core).run_jobs()
        Worker(core).run_jobs()
    finally:
        core.close()

    restarted = make_core(any_db_url, tmp_path, mailer, FakeClock(clock.now()))
    try:
        restarted.run(schedule.run_soon, "sla-breaches")  # due again: it must not repeat
        Worker(restarted).run_jobs()
        page = restarted.run(queries.task_page, late)
        breach_notes = [n["text"] for n in page["notes"] if n["kind"] == "sla_breach"]
        paged = [n["text"] for n in page["notes"] if n["text"].startswith("Duty manager")]
        runs = [i for i in page["instances"] if i["event"] == "sla_breach"]
        badges = restarted.run(sla.breach_badges, [late, answered])
        breaches = restarted.run(sla.recent_breaches)
    finally:
        restarted.close()

    assert len(breach_notes) == 1 and "acknowledge target of 1h 00m" in breach_notes[0]
    assert paged == ["Duty manager paged: Carrier missed acknowledge by 60 s"]
    assert [r["status"] for r in runs] == ["completed"]
    assert badges == {late: ["acknowledge"]}
    assert [(b["task_id"], b["metric"], b["priority"], b["overdue_seconds"])
            for b in breaches] == [(late, "acknowledge", None, 60)]
