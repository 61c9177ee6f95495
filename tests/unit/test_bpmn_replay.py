"""Simulated instances (dry-runs): timers run on the replay's clock, live instances on the
real one, even while a simulation runs in another thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from engine.adapters.bpmn import ProcessRuntime
from engine.adapters.bpmn_replay import Simulation
from engine.services.models import BUNDLED_DIR

BUNDLED = (BUNDLED_DIR / "liaison_new_assignment.bpmn").read_bytes()
VARIABLES = {"task": {"id": 7}, "event": {}, "ticket": {}, "provider": {}}
LONG_AGO = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def runtime():
    runtime = ProcessRuntime(script_timeout=2.0)
    yield runtime
    runtime.close()


def recorder(calls: list):
    def call(name, params):
        calls.append((name, params.get("text")))
        return {}
    return call


def test_a_timer_is_due_from_the_simulated_start_and_fires_when_the_replay_gets_there(runtime):
    calls = []
    simulation = Simulation(runtime, runtime.load("bundled", BUNDLED), recorder(calls))

    simulation.start(dict(VARIABLES), LONG_AGO)
    assert simulation.result.next_timer_at == LONG_AGO + timedelta(hours=4)
    simulation.advance_to(LONG_AGO + timedelta(hours=3, minutes=59))
    assert [name for name, _ in calls] == ["provider.submit_request"]

    simulation.advance_to(LONG_AGO + timedelta(hours=5))

    assert calls[-1] == ("task.add_note", "No acknowledgement from the provider after PT4H")
    assert simulation.status == "waiting" and simulation.result.next_timer_at is None
    assert simulation.deliver("ExternalAcknowledgement", 7, {"external_reference": "R"},
                              LONG_AGO + timedelta(hours=6))
    assert simulation.status == "completed"


def test_live_instances_keep_the_real_clock_while_a_simulation_runs(runtime):
    spec = runtime.load("bundled", BUNDLED)
    started = threading.Event()
    results = {}

    def live():
        started.wait(10)
        results["live"] = runtime.start(spec, dict(VARIABLES), lambda name, params: {})

    thread = threading.Thread(target=live)
    thread.start()
    simulation = Simulation(runtime, spec, lambda name, params: {})
    started.set()
    simulation.start(dict(VARIABLES), LONG_AGO)
    thread.join(30)

    due = results["live"].next_timer_at
    assert abs((due - datetime.now(UTC)) - timedelta(hours=4)) < timedelta(minutes=5)
    assert simulation.result.next_timer_at == LONG_AGO + timedelta(hours=4)
