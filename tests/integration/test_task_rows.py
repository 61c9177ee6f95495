"""The hot paths' tasks are plain rows (docs/design/write-path.md §2): what a use case assigns
is written once at its commit with the version check, a change made behind the row's back is
never overwritten, and an ORM copy of the same task in the unit of work stays in step. On
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm.exc import StaleDataError

from engine.adapters import orm
from engine.services import inbound, tasks
from tests.conftest import seed


@pytest.fixture
def task(any_core):
    data = seed(any_core)
    return any_core.run(tasks.create_task, data["ticket"]["id"], "Router dead", "Leeds",
                        group="Carrier Group")


def test_a_change_made_behind_a_task_rows_back_is_not_overwritten(any_core, task):
    with any_core.uow() as uow:
        row = uow.repo.task_row_for_update(task["id"])
        # what the lock keeps out, should anything slip past it: a writer of its own
        uow.session.connection().execute(
            update(orm.Task.__table__).where(orm.Task.__table__.c.id == task["id"])
            .values(version=orm.Task.__table__.c.version + 1, title="changed elsewhere"))
        row.external_reference = "REF-1"
        with pytest.raises(StaleDataError):
            uow.commit()
    assert any_core.run(tasks.get_task, task["id"])["external_reference"] is None


def test_an_orm_copy_of_the_task_stays_in_step_with_its_row(any_core, task):
    """A use case that loaded the task through the ORM (a PSA poller's change) and then runs
    an inbound event on it in the same unit of work can still change and save it."""
    with any_core.uow() as uow:
        loaded = uow.repo.task(task["id"])
        inbound.acknowledge_external(uow, task["id"], "REF-2")
        loaded.priority = "high"
        uow.commit()
    view = any_core.run(tasks.get_task, task["id"])
    assert (view["external_reference"], view["priority"]) == ("REF-2", "high")
