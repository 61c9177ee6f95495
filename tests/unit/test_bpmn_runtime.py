"""Running process instances: the bundled processes, messages, timers, user tasks, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from engine.adapters.bpmn import ProcessRuntime
from engine.exceptions import NotFound

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
FIXTURES = ROOT / "tests" / "fixtures" / "bpmn"
ACK = "ExternalAcknowledgement"


class FakeOperators:
    """Records operator calls; answers with a small dict, or raises for operators in `failing`."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.failing = failing or {}

    def __call__(self, name: str, params: dict) -> dict:
        self.calls.append((name, params))
        if name in self.failing:
            raise self.failing[name]
        return {"status": "queued", "operator": name}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def variables(task_id: int = 7, **extra) -> dict:
    return {
        "event": {"type": "new_assignment", "request_type": "Submit Request", "direction": "Out",
                  "message": None, "channel": "web", "actor": "agent.smith",
                  "at": "2025-03-04T10:15:00+00:00"},
        "task": {"id": task_id, "ticket_id": 31, "title": "Printer on floor 3 jams",
                 "description": "The printer in room 301 jams on every second page since the "
                                "toner was replaced. Please send a technician.",
                 "group": "Outsourced printing", "status": "open", "external_reference": None,
                 "solution": None, "priority": 3, "customer": "ACME Corporation"},
        "ticket": {"id": 31, "title": "Printing broken", "customer": "ACME Corporation"},
        "provider": {"name": "PrintCare", "channel": "soap"},
        **extra,
    }


@pytest.fixture
def runtime():
    runtime = ProcessRuntime(script_timeout=0.5, script_memory_mb=256)
    yield runtime
    runtime.close()


@pytest.fixture
def new_assignment(runtime):
    return runtime.load("new_assignment", (PROCESSES / "liaison_new_assignment.bpmn").read_bytes())


def started(runtime, spec, ops, task_id=7, **extra):
    result = runtime.start(spec, variables(task_id, **extra), ops)
    assert result.status == "waiting", result.error
    return result


def test_new_assignment_submits_and_waits_for_the_acknowledgement(runtime, new_assignment):
    ops = FakeOperators()
    before = datetime.now(UTC)

    result = runtime.start(new_assignment, variables(), ops)

    assert ops.calls == [("provider.submit_request", {})]
    assert result.status == "waiting"
    assert result.waiting_messages == [ACK]
    assert result.error is None
    assert before + timedelta(hours=4) <= result.next_timer_at
    assert result.next_timer_at <= datetime.now(UTC) + timedelta(hours=4)
    steps = {(s["id"], s["type"]) for s in result.current_steps}
    assert steps == {("wait_acknowledgement", "receiveTask"), ("no_acknowledgement", "timer")}
    assert result.user_tasks == []
    assert result.data == {}


def test_escalation_delay_comes_from_the_variables_when_given(runtime, new_assignment):
    result = started(runtime, new_assignment, FakeOperators(), escalate_after="PT30M")

    expected = datetime.now(UTC) + timedelta(minutes=30)
    assert abs(result.next_timer_at - expected) < timedelta(minutes=1)


def test_acknowledgement_completes_with_the_variables_and_the_payload(runtime, new_assignment):
    ops = FakeOperators()
    waiting = started(runtime, new_assignment, ops)

    done = runtime.deliver_message(new_assignment, waiting.state, ACK, 7,
                                   {"task_id": 7, "external_reference": "PC-4711"}, ops)

    assert done.status == "completed"
    assert done.waiting_messages == [] and done.next_timer_at is None
    assert done.data["ack"]["external_reference"] == "PC-4711"
    assert done.data["task"]["title"] == "Printer on floor 3 jams"
    assert done.data["provider"] == {"name": "PrintCare", "channel": "soap"}
    assert done.data["submit_result"] == {"status": "queued", "operator": "provider.submit_request"}
    assert ops.names() == ["provider.submit_request"]


def test_acknowledgement_for_another_task_is_refused(runtime, new_assignment):
    ops = FakeOperators()
    seven = started(runtime, new_assignment, ops, task_id=7)
    eight = started(runtime, new_assignment, ops, task_id=8)

    assert runtime.deliver_message(new_assignment, eight.state, ACK, 7, {"task_id": 7}, ops) is None
    assert runtime.deliver_message(new_assignment, seven.state, ACK, 8, {"task_id": 8}, ops) is None
    # both instances are unchanged: each still takes its own acknowledgement
    for state, task_id in ((seven.state, 7), (eight.state, 8)):
        done = runtime.deliver_message(new_assignment, state, ACK, task_id,
                                       {"task_id": task_id}, ops)
        assert done.status == "completed"


def test_correlation_survives_serialization_round_trips(runtime, new_assignment):
    ops = FakeOperators()
    eight = started(runtime, new_assignment, ops, task_id=8)
    # another process's runtime (a fresh cache) restores, moves and re-stores the instance
    other = ProcessRuntime()
    spec = other.load("again", (PROCESSES / "liaison_new_assignment.bpmn").read_bytes())
    moved = other.fire_timers(spec, eight.state, ops)  # nothing due: restored and stored again
    assert moved.status == "waiting"
    assert moved.state != ""

    assert other.deliver_message(spec, moved.state, ACK, 7, {"task_id": 7}, ops) is None
    assert other.deliver_message(spec, moved.state, ACK, 8, {"task_id": 8}, ops).status == \
        "completed"
    other.close()


def test_an_unexpected_message_is_not_delivered(runtime, new_assignment):
    ops = FakeOperators()
    waiting = started(runtime, new_assignment, ops)

    assert runtime.deliver_message(new_assignment, waiting.state, "ExternalUpdateMessage", 7,
                                   {"task_id": 7}, ops) is None


def test_timer_escalates_once_and_the_wait_goes_on(runtime, new_assignment):
    ops = FakeOperators()
    waiting = started(runtime, new_assignment, ops)
    start = datetime.now(UTC)

    early = runtime.fire_timers(new_assignment, waiting.state, ops,
                                now=start + timedelta(hours=3, minutes=59))
    assert ops.names() == ["provider.submit_request"]
    assert early.next_timer_at == waiting.next_timer_at

    fired = runtime.fire_timers(new_assignment, waiting.state, ops,
                                now=start + timedelta(hours=4, seconds=1))
    assert ops.calls[-1] == ("task.add_note",
                             {"text": "No acknowledgement from the provider after PT4H"})
    assert fired.status == "waiting"
    assert fired.waiting_messages == [ACK]
    assert fired.next_timer_at is None

    again = runtime.fire_timers(new_assignment, fired.state, ops,
                                now=start + timedelta(hours=9))
    assert ops.names().count("task.add_note") == 1

    done = runtime.deliver_message(new_assignment, again.state, ACK, 7, {"task_id": 7}, ops)
    assert done.status == "completed"


def test_operator_failure_ends_the_instance_with_a_readable_error(runtime, new_assignment):
    ops = FakeOperators(failing={"provider.submit_request": ConnectionError("provider is down")})

    result = runtime.start(new_assignment, variables(), ops)

    assert result.status == "error"
    assert "submit_request" in result.error
    assert "provider.submit_request" in result.error
    assert "provider is down" in result.error
    assert result.state  # the failed instance is still stored


def test_completed_instance_state_is_small(runtime, new_assignment):
    ops = FakeOperators()
    waiting = started(runtime, new_assignment, ops)
    fired = runtime.fire_timers(new_assignment, waiting.state, ops,
                                now=datetime.now(UTC) + timedelta(hours=5))
    done = runtime.deliver_message(new_assignment, fired.state, ACK, 7,
                                   {"task_id": 7, "external_reference": "PC-4711"}, ops)

    assert done.status == "completed"
    assert len(done.state.encode()) <= 8192
    assert "spec" not in json.loads(done.state)


@pytest.mark.parametrize(("filename", "operator"), [
    ("liaison_update_message.bpmn", "provider.send_update"),
    ("liaison_closure.bpmn", "provider.send_closure"),
])
def test_update_and_closure_send_once_and_complete(runtime, filename, operator):
    ops = FakeOperators()
    spec = runtime.load(filename, (PROCESSES / filename).read_bytes())

    result = runtime.start(spec, variables(), ops)

    assert result.status == "completed", result.error
    assert ops.names() == [operator]


def test_user_task_waits_for_its_form_and_runs_on(runtime):
    ops = FakeOperators()
    spec = runtime.load("user_task", (FIXTURES / "user_task.bpmn").read_bytes())

    waiting = runtime.start(spec, variables(), ops)
    assert waiting.status == "waiting"
    assert waiting.user_tasks == [{"id": "review", "name": "Review the solution",
                                   "form": "review-schema.json"}]
    assert {"id": "review", "name": "Review the solution", "type": "userTask",
            "form": "review-schema.json"} in \
        waiting.current_steps
    with pytest.raises(NotFound):
        runtime.complete_user_task(spec, waiting.state, "nope", {}, ops)

    done = runtime.complete_user_task(spec, waiting.state, "review", {"verdict": "accepted"}, ops)

    assert done.status == "completed", done.error
    assert ops.calls == [("task.set_field", {"field": "solution",
                                             "value": "accepted (Printer on floor 3 jams)"})]


@pytest.mark.parametrize(("condition", "marked"), [
    ("task['priority'] >= 3 and provider['channel'] == 'soap'", True),
    ("task['priority'] > 3", False),
])
def test_gateway_conditions_choose_the_path(runtime, condition, marked):
    ops = FakeOperators()
    xml = (FIXTURES / "gateway.bpmn").read_text().replace("CONDITION", escape(condition))
    spec = runtime.load(condition, xml.encode())

    result = runtime.start(spec, variables(), ops)

    assert result.status == "completed", result.error
    assert ops.calls == ([("task.set_field", {"field": "priority", "value": 4})] if marked else [])


def test_script_error_names_the_element_and_the_line(runtime):
    xml = (FIXTURES / "script_task.bpmn").read_text().replace(
        "SCRIPT", "total = task['priority']\nshare = total / 0")
    spec = runtime.load("div", xml.encode())

    result = runtime.start(spec, variables(), FakeOperators())

    assert result.status == "error"
    assert "Run the script (run_script)" in result.error
    assert "ZeroDivisionError" in result.error
    assert "line 2" in result.error


def test_exception_with_an_odd_message_still_gives_a_readable_error(runtime):
    # Spiff 3.2's str() of the wrapping exception raises TypeError for such a NameError
    xml = (FIXTURES / "script_task.bpmn").read_text().replace("SCRIPT", "raise NameError('boom')")
    spec = runtime.load("odd", xml.encode())

    result = runtime.start(spec, variables(), FakeOperators())

    assert result.status == "error"
    assert "NameError" in result.error and "boom" in result.error


def test_endless_bpmn_loop_ends_in_error(runtime):
    spec = runtime.load("loop", (FIXTURES / "endless_loop.bpmn").read_bytes())

    result = runtime.start(spec, variables(), FakeOperators())

    assert result.status == "error"
    assert "endless loop" in result.error


def test_load_parses_once_per_key(runtime):
    data = (PROCESSES / "liaison_closure.bpmn").read_bytes()

    assert runtime.load(("closure", 1), data) is runtime.load(("closure", 1), data)
