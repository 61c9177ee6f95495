"""Periodic jobs: due once across workers, on their schedule, on demand, after a crash."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.services import leases, schedule
from engine.services.schedule import Job, daily_at, every
from engine.worker import Worker
from tests.conftest import make_core
from tests.fakes import FakeClock, FakeMailer


@pytest.fixture
def timed(tmp_path, any_db_url):
    clock = FakeClock()
    core = make_core(any_db_url, tmp_path, FakeMailer(), clock=clock)
    runs: list[str] = []
    core.jobs = [Job("poll", lambda c: runs.append("poll") or {"seen": len(runs)}, every(60)),
                 Job("nightly", lambda c: runs.append("nightly") or {}, daily_at(2),
                     start_now=False)]
    yield core, clock, runs
    core.close()


def test_a_due_job_runs_once_whichever_worker_looks(timed):
    core, clock, runs = timed
    first, second = Worker(core, name="w1"), Worker(core, name="w2")

    assert first.run_jobs() == 1 and second.run_jobs() == 0
    assert runs == ["poll"]
    clock.advance(seconds=59)
    assert first.run_jobs() + second.run_jobs() == 0
    clock.advance(seconds=2)
    assert second.run_jobs() == 1 and first.run_jobs() == 0
    assert runs == ["poll", "poll"]
    [nightly, poll] = core.run(schedule.job_views)
    assert poll["runs"] == 2 and poll["last_result"] == {"seen": 2}
    assert nightly["runs"] == 0


def test_daily_job_waits_for_its_hour_and_can_be_asked_for_now(timed):
    core, clock, runs = timed
    worker = Worker(core, name="w1")
    worker.run_jobs()
    assert "nightly" not in runs
    core.run(schedule.run_soon, "nightly")
    worker.run_jobs()
    assert runs.count("nightly") == 1
    due = daily_at(2)(clock.now())
    assert (due.hour, due.minute) == (2, 0) and timedelta(0) < due - clock.now() <= timedelta(days=1)


def test_a_crashed_workers_run_is_taken_over_one_lease_later(timed):
    core, clock, runs = timed
    core.jobs = [Job("poll", lambda c: runs.append("poll") or {}, every(60))]
    core.run(schedule.register, core.jobs)
    # w1 claims and dies before finishing: nothing records its run.
    assert core.run(schedule.claim_due, core.jobs, "w1") == ["poll"]
    lease = core.settings.worker_lease_seconds
    clock.advance(seconds=lease - 1)
    assert Worker(core, name="w2").run_jobs() == 0  # still leased to w1
    clock.advance(seconds=2)  # the run is owed now, although the next one is not due yet
    assert Worker(core, name="w2").run_jobs() == 1
    assert runs == ["poll"]
    assert Worker(core, name="w2").run_jobs() == 0  # and then back on its schedule


def test_a_running_jobs_lease_is_renewed_while_its_worker_lives(timed):
    core, clock, runs = timed
    core.jobs = [Job("poll", lambda c: runs.append("poll") or {}, every(3600))]
    core.run(schedule.register, core.jobs)
    assert core.run(schedule.claim_due, core.jobs, "w1") == ["poll"]
    for _ in range(4):
        clock.advance(seconds=core.settings.worker_lease_seconds * 0.75)
        core.run(leases.renew, "w1")
        assert Worker(core, name="w2").run_jobs() == 0


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(timed):
    core, clock, runs = timed

    def broken(c):
        raise RuntimeError("provider unreachable")

    core.jobs = [Job("broken", broken, every(60)), *core.jobs]
    assert Worker(core, name="w1").run_jobs() == 2
    views = {view["name"]: view for view in core.run(schedule.job_views)}
    assert views["broken"]["last_error"] == "RuntimeError: provider unreachable"
    assert runs == ["poll"]


def test_run_soon_of_an_unknown_job_says_so(timed):
    core, _, _ = timed
    with pytest.raises(Exception, match="no scheduled job named 'nope'"):
        core.run(schedule.run_soon, "nope")
