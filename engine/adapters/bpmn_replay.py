"""A process instance run in memory on a simulated clock, for dry-runs (part of the BPMN
adapter: it drives ProcessRuntime's workflows and sandbox).

SpiffWorkflow reads the time for its timers in one place, the `datetime` of its timer
module, and has no hook for a clock. That name is pointed once at a subclass whose `now()`
answers a context variable when one is set in the running thread (a dry-run), and the real
time otherwise (live instances in other threads are untouched). A timer due at T then
fires when the replay reaches T, whatever the wall clock says, and its due time is computed
from the simulated moment it started waiting.
"""

from __future__ import annotations

import copy
import threading
from contextvars import ContextVar
from datetime import datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.adapters.bpmn import (
    CORRELATION_KEY,
    OperatorCall,
    ProcessRuntime,
    RunResult,
    SpecHandle,
)

_NOW: ContextVar[datetime | None] = ContextVar("liaison_simulated_now", default=None)
_installed = threading.Lock()
MAX_TIMER_FIRINGS = 200  # per instance and replay: a cycle timer must not run for ever
_PAST_DUE = timedelta(milliseconds=1)  # Spiff fires a timer once now is *after* its due time


class _SimulatedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        simulated = _NOW.get()
        if simulated is None:
            return super().now(tz)
        return simulated.astimezone(tz) if tz is not None else simulated.replace(tzinfo=None)


def simulated_now() -> datetime | None:
    """The simulated moment a Simulation is acting at in this thread (None outside one)."""
    return _NOW.get()


def _install_clock() -> None:
    with _installed:
        if spiff_timer.datetime is not _SimulatedDatetime:
            spiff_timer.datetime = _SimulatedDatetime


class Simulation:
    """One instance of `spec`, started and moved on at simulated moments; nothing is stored.
    `result` is its latest RunResult (times in simulated time)."""

    def __init__(self, runtime: ProcessRuntime, spec: SpecHandle, call_operator: OperatorCall):
        _install_clock()
        self.runtime, self.spec, self.call_operator = runtime, spec, call_operator
        self.wf: BpmnWorkflow | None = None
        self.result: RunResult | None = None
        self.timers_truncated = False

    def _at(self, moment: datetime, action) -> None:
        token = _NOW.set(moment)
        try:
            self.result = self.runtime._advance(self.wf, action, "")
        finally:
            _NOW.reset(token)

    @property
    def status(self) -> str:
        return self.result.status if self.result else "running"

    def start(self, variables: dict, at: datetime) -> None:
        self.wf = BpmnWorkflow(self.spec.spec, self.spec.subprocess_specs,
                               script_engine=self.runtime._engine(self.call_operator))
        task = variables.get("task") or {}
        if task.get("id") is not None:
            self.wf.correlations[CORRELATION_KEY] = {"task_id": task["id"]}

        def begin():
            self.wf.get_next_task(state=TaskState.READY).data.update(copy.deepcopy(variables))
        self._at(at, begin)

    def deliver(self, name: str, task_id: int, payload: dict, at: datetime) -> bool:
        """Delivers BPMN message `name` if the instance waits for it; True when it took it."""
        if self.status != "waiting" or name not in self.result.waiting_messages:
            return False
        event = BpmnEvent(MessageEventDefinition(name), payload={**payload, "task_id": task_id},
                          correlations={CORRELATION_KEY: {"task_id": task_id}})
        self._at(at, lambda: self.wf.send_event(event))
        return True

    def advance_to(self, until: datetime) -> None:
        """Fires, in order, every timer due by `until`, each at its own simulated moment."""
        fired = 0
        while (self.status == "waiting" and self.result.next_timer_at is not None
               and self.result.next_timer_at <= until):
            if fired == MAX_TIMER_FIRINGS:
                self.timers_truncated = True
                return
            self._at(self.result.next_timer_at + _PAST_DUE, self.wf.refresh_timers)
            fired += 1

    @property
    def waits_at_user_task(self) -> bool:
        return bool(self.result and self.result.user_tasks)
