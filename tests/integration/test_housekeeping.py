"""Purging completed process instances keeps stored state bounded; history stays."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from engine.adapters.archive import JsonLinesArchive
from engine.config import Settings
from engine.jobs import engine_jobs
from engine.services import housekeeping, inbound, queries, tasks
from tests.support import liaison

ROOT = Path(__file__).resolve().parents[2]


def test_completed_instances_are_archived_then_purged_and_history_stays(any_core, tmp_path):
    from tests.conftest import seed
    world = seed(any_core)
    done, waiting = (any_core.run(tasks.create_task, world["ticket"]["id"], title, "",
                                  group="Carrier Group") for title in ("done", "waiting"))
    any_core.run(inbound.acknowledge_external, done["id"], "REF-1")
    archive = tmp_path / "archive" / "instances.jsonl"

    kept = housekeeping.purge_all(any_core, housekeeping.cutoff(any_core.clock.now(), 1))
    assert kept == 0  # completed a moment ago: younger than a day
    purged = housekeeping.purge_all(any_core, housekeeping.cutoff(any_core.clock.now(), 0),
                                    JsonLinesArchive(archive))

    assert purged == 1
    assert any_core.run(queries.instances_of_task, done["id"]) == []
    assert [i["status"] for i in any_core.run(queries.instances_of_task, waiting["id"])] == \
        ["waiting"]
    assert ("Acknowledgement", "In") in [(e["request_type"], e["direction"]) for e in
                                         any_core.run(queries.exchanges_of_task, done["id"])]
    [line] = archive.read_text().splitlines()
    record = json.loads(line)
    assert record["task_id"] == done["id"] and record["status"] == "completed"
    assert json.loads(record["state"])["correlations"]  # the whole state, restorable


def test_a_failing_archive_purges_nothing(core, tmp_path):
    from tests.conftest import seed
    world = seed(core)
    task = core.run(tasks.create_task, world["ticket"]["id"], "t", "", group="Carrier Group")
    core.run(inbound.acknowledge_external, task["id"], "REF-2")

    def broken(rows):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        housekeeping.purge_all(core, housekeeping.cutoff(core.clock.now(), 0), broken)
    assert len(core.run(queries.instances_of_task, task["id"])) == 1


def test_the_daily_purge_job_runs_only_when_configured(tmp_path):
    names = [job.name for job in engine_jobs(Settings(instance_path=tmp_path))]
    assert "purge-instances" not in names
    configured = Settings(instance_path=tmp_path, extra={"LIAISON_PURGE_INSTANCES_DAYS": "30"})
    assert "purge-instances" in [job.name for job in engine_jobs(configured)]


def test_the_command_answers_in_one_line(tmp_path):
    env = {**os.environ, "LIAISON_INSTANCE_PATH": str(tmp_path / "inst"),
           "LIAISON_DATABASE_URL": f"sqlite:///{tmp_path / 'inst' / 'cli.db'}"}

    def run(*args):
        return subprocess.run(liaison(*args), capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=120)

    assert "--older-than DAYS" in run("purge-instances", "--help").stdout
    missing_table = run("purge-instances", "--older-than", "3")
    assert missing_table.returncode == 1 and len(missing_table.stderr.splitlines()) == 1
    assert run("init-db").returncode == 0
    done = run("purge-instances", "--older-than", "30")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "purged 0 completed process instances older than 30 days"
    bad = run("purge-instances", "--older-than", "soon")
    assert bad.returncode == 2 and "whole number of days" in bad.stderr
