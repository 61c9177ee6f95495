"""BPMN for liaison: validate uploads, run process instances, store their state.

The only module (with its helper bpmn_validation) that imports SpiffWorkflow. Every expression
and script runs through engine.adapters.sandbox; service tasks call the operator the caller
passes in. Stored state is Spiff's JSON without the spec, which is re-attached from the
SpecHandle on load, so a completed bundled instance stays a few KB.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.defaults import NoneTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.adapters.bpmn_state import StateCodec
from engine.adapters.bpmn_validation import ParsedModel, is_bounded, load_specs, validate_bpmn
from engine.adapters.sandbox import ScriptError, ScriptSandbox, run_code
from engine.exceptions import NotFound

__all__ = ["OperatorCall", "ParsedModel", "ProcessRuntime", "RunResult", "SpecHandle",
           "validate_bpmn"]

OperatorCall = Callable[[str, dict], dict]  # (operator name, evaluated params) -> JSON-able dict
CORRELATION_KEY = "liaison_task"  # our own key, set at start: {"task_id": task["id"]}
MAX_TASKS_PER_RUN = 500  # a BPMN loop must not spin for ever (Spiff breaks near 1,000 deep)
MAX_SECONDS_PER_RUN = 60.0
_TIMERS = ("DurationTimerEventDefinition", "TimeDateEventDefinition", "CycleTimerEventDefinition")


@dataclass(frozen=True)
class SpecHandle:
    key: Hashable
    process_id: str
    spec: Any = field(repr=False)
    subprocess_specs: dict = field(repr=False)
    spec_json: str = field(repr=False)  # Spiff's serialized spec, re-attached to stored state
    subprocess_specs_json: str = field(repr=False)


@dataclass
class RunResult:
    state: str  # serialized workflow JSON without the embedded spec
    status: str  # "waiting" | "completed" | "error" | "running"
    waiting_messages: list[str]  # BPMN message names the instance waits for
    next_timer_at: datetime | None  # earliest due timer (aware UTC)
    current_steps: list[dict]  # [{"id", "name", "type"}]
    user_tasks: list[dict]  # READY user tasks: [{"id", "name", "form"}]
    error: str | None  # readable reason when status == "error"
    data: dict  # final workflow data when completed, else {}


class OperatorError(Exception):
    """A service task's operator raised; the message names the operator and the reason."""


class _RunawayProcess(Exception):  # noqa: N818
    pass


class _SandboxEnvironment(TaskDataEnvironment):
    """Spiff evaluates every expression and script through here, hence through the sandbox:
    in this process when provably cheap, else in a sandbox child process."""

    def __init__(self, sandbox: ScriptSandbox) -> None:
        super().__init__({})
        self.sandbox = sandbox

    def _run(self, source: str, mode: str, data: dict):
        if is_bounded(source, mode):
            return run_code(source, mode, data, self.sandbox.timeout)
        return self.sandbox.run(source, mode, data)

    def evaluate(self, expression, context, external_context=None):
        data = {**external_context, **context} if external_context else context
        return self._run(expression, "eval", data)

    def execute(self, script, context, external_context=None):
        self._run(script, "exec", context)
        return True


class _ScriptEngine(PythonScriptEngine):
    """Spiff's engine with our environment and a working call_service (3.2's is broken)."""

    def __init__(self, environment: _SandboxEnvironment, call_operator: OperatorCall) -> None:
        super().__init__(environment=environment)
        self.call_operator = call_operator

    def call_service(self, task, operation_name=None, operation_params=None, **kwargs):
        params = {name: p.get("value") for name, p in (operation_params or {}).items()}
        try:
            result = self.call_operator(operation_name, params)
            return json.dumps({} if result is None else result, default=_json_default)
        except Exception as exc:
            raise OperatorError(f"operator {operation_name} failed: {_text(exc)}") from exc


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"a value of type {type(value).__name__} is not JSON")


def _text(exc: BaseException) -> str:
    """``Type: message`` that never raises (Spiff 3.2's str() of some exceptions does)."""
    if isinstance(exc, ScriptError):
        return str(exc)
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg}" + (f" (line {exc.lineno})" if exc.lineno else "")
    try:
        message = str(exc)
    except Exception:
        message = str(exc.args[0]) if exc.args else ""
    prefix = "" if isinstance(exc, (OperatorError, _RunawayProcess)) else f"{type(exc).__name__}: "
    return prefix + message if message else type(exc).__name__


def _describe_failure(wf: BpmnWorkflow, exc: Exception) -> str:
    """``Element name (id): reason``, the reason from the most telling exception in the chain."""
    chain, link = [], exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    known = next((e for e in chain if isinstance(e, _KNOWN_FAILURES)), exc)
    reason = _text(known)
    if known is not exc and isinstance(exc, WorkflowException) and exc.args and str(
            exc.args[0]).startswith("Error evaluating"):
        reason = f"{exc.args[0]}: {reason}"  # names the expression
    failed = wf.get_tasks(state=TaskState.ERROR) or [getattr(exc, "task", None)]
    spec = getattr(failed[0], "task_spec", None)
    if spec is None or not getattr(spec, "bpmn_id", None):
        return reason
    return f"{spec.bpmn_name or spec.bpmn_id} ({spec.bpmn_id}): {reason}"


_KNOWN_FAILURES = (ScriptError, SyntaxError, OperatorError, _RunawayProcess)


def _due_at(value) -> datetime | None:
    if isinstance(value, dict):
        value = value.get("next")
    try:
        return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _form_of(spec) -> str | None:
    properties = (getattr(spec, "extensions", None) or {}).get("properties") or {}
    return properties.get("formJsonSchemaFilename")


def _step(spec) -> dict:
    kind = type(spec).__name__
    if isinstance(getattr(spec, "event_definition", None), TimerEventDefinition):
        kind = "Timer"
    step = {"id": spec.bpmn_id, "name": spec.bpmn_name or spec.bpmn_id,
            "type": kind[:1].lower() + kind[1:]}
    form = _form_of(spec)
    return {**step, "form": form} if form else step


def _user_task(spec) -> dict:
    return {"id": spec.bpmn_id, "name": spec.bpmn_name or spec.bpmn_id, "form": _form_of(spec)}


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, default=str))


class ProcessRuntime:
    """Loads specs (cached), starts instances and moves them on. Thread-safe."""

    def __init__(self, script_timeout: float = 2.0, script_memory_mb: int = 256) -> None:
        self._environment = _SandboxEnvironment(
            ScriptSandbox(timeout=script_timeout, memory_mb=script_memory_mb))
        self._specs: OrderedDict[Hashable, SpecHandle] = OrderedDict()
        self._lock = threading.Lock()
        self._codec = StateCodec()

    def cached(self, key: Hashable) -> SpecHandle | None:
        """The spec loaded under ``key`` before, if it is still in the cache."""
        with self._lock:
            handle = self._specs.get(key)
            if handle is not None:
                self._specs.move_to_end(key)
            return handle

    def load(self, key: Hashable, bpmn_xml: bytes) -> SpecHandle:
        """The parsed spec of a stored model, parsed once per key (LRU of 128)."""
        with self._lock:
            handle = self._specs.get(key)
            if handle is not None:
                self._specs.move_to_end(key)
                return handle
        process_id, spec, subprocess_specs = load_specs(bpmn_xml)
        handle = SpecHandle(key, process_id, spec, subprocess_specs,
                            *self._codec.spec_json(spec, subprocess_specs))
        with self._lock:
            self._specs[key] = handle
            while len(self._specs) > 128:
                self._specs.popitem(last=False)
        return handle

    def start(self, spec: SpecHandle, variables: dict, call_operator: OperatorCall) -> RunResult:
        """Starts an instance with ``variables`` as its top-level data and runs it on."""
        wf = BpmnWorkflow(spec.spec, spec.subprocess_specs, script_engine=self._engine(call_operator))
        task = variables.get("task")
        task_id = task.get("id") if isinstance(task, dict) else None
        if task_id is not None:
            wf.correlations[CORRELATION_KEY] = {"task_id": task_id}

        def begin():
            wf.get_next_task(state=TaskState.READY).data.update(copy.deepcopy(variables))
        return self._advance(wf, begin, previous_state="")

    def deliver_message(self, spec: SpecHandle, state: str, name: str, task_id: int,
                        payload: dict, call_operator: OperatorCall) -> RunResult | None:
        """Delivers message ``name`` for task ``task_id``; None when the instance is not waiting
        for it (instance unchanged). The payload lands in the catch event's message variable."""
        wf = self._restore(spec, state, call_operator)
        bound = wf.correlations.get(CORRELATION_KEY, {}).get("task_id", task_id)
        if bound != task_id or name not in self._waiting_messages(wf):
            return None
        event = BpmnEvent(MessageEventDefinition(name), payload={**payload, "task_id": task_id},
                          correlations={CORRELATION_KEY: {"task_id": task_id}})
        try:
            wf.send_event(event)
        except WorkflowException as exc:
            if type(exc) is WorkflowException:  # "This process is not waiting for …"
                return None
            return self._summarize(wf, state, _describe_failure(wf, exc))
        except Exception as exc:
            return self._summarize(wf, state, _describe_failure(wf, exc))
        return self._advance(wf, None, state)

    def fire_timers(self, spec: SpecHandle, state: str, call_operator: OperatorCall,
                    now: datetime | None = None) -> RunResult:
        """Fires the timers due at ``now`` (default: the real clock) and runs on."""
        wf = self._restore(spec, state, call_operator)
        if now is not None:
            self._mark_due_timers(wf, now)
        return self._advance(wf, wf.refresh_timers, state)

    def complete_user_task(self, spec: SpecHandle, state: str, element_id: str, form_data: dict,
                           call_operator: OperatorCall) -> RunResult:
        """Completes the READY user task ``element_id`` with ``form_data`` and runs on."""
        wf = self._restore(spec, state, call_operator)
        ready = [t for t in wf.get_tasks(state=TaskState.READY, manual=True)
                 if t.task_spec.bpmn_id == element_id]
        if not ready:
            raise NotFound(f"the instance has no open user task {element_id!r}")
        task = ready[0]

        def complete():
            if hasattr(task.task_spec, "add_data_from_form"):
                task.task_spec.add_data_from_form(task, copy.deepcopy(form_data))
            else:
                task.data.update(copy.deepcopy(form_data))
            task.run()
        return self._advance(wf, complete, state)

    def close(self) -> None:
        """Stops the sandbox subprocesses, if any; the runtime stays usable."""
        self._environment.sandbox.close()

    # ------------------------------------------------------------------ internals

    def _engine(self, call_operator: OperatorCall) -> _ScriptEngine:
        return _ScriptEngine(self._environment, call_operator)

    def _dump(self, wf: BpmnWorkflow) -> str:
        return self._codec.dump(wf)

    def _restore(self, spec: SpecHandle, state: str, call_operator: OperatorCall) -> BpmnWorkflow:
        wf = self._codec.load(state, spec.spec, spec.subprocess_specs, spec.spec_json,
                              spec.subprocess_specs_json)
        wf.script_engine = self._engine(call_operator)  # the engine is not serialized
        return wf

    def _advance(self, wf: BpmnWorkflow, action: Callable[[], Any] | None,
                 previous_state: str) -> RunResult:
        try:
            if action is not None:
                action()
            self._run_engine(wf)
        except Exception as exc:  # every failure ends the instance with a readable reason
            return self._summarize(wf, previous_state, _describe_failure(wf, exc))
        return self._summarize(wf, previous_state)

    @staticmethod
    def _run_engine(wf: BpmnWorkflow) -> None:
        count, deadline = [0], time.monotonic() + MAX_SECONDS_PER_RUN

        def count_task(task):
            count[0] += 1
            if count[0] > MAX_TASKS_PER_RUN or time.monotonic() > deadline:
                runaway = _RunawayProcess(f"the process ran {count[0] - 1:,} tasks without "
                                          "waiting; it looks like an endless loop")
                runaway.task = task
                raise runaway
        # do_engine_steps ends by refreshing timers, which may make more tasks READY; a plain
        # bpmn:task is manual for Spiff but passes straight through, as in other engines
        while True:
            wf.do_engine_steps(will_complete_task=count_task)
            ready = [t for t in wf.get_tasks(state=TaskState.READY)
                     if not t.task_spec.manual or isinstance(t.task_spec, NoneTask)]
            if not ready:
                return
            for task in ready:
                if isinstance(task.task_spec, NoneTask):
                    count_task(task)
                    task.run()

    @staticmethod
    def _mark_due_timers(wf: BpmnWorkflow, now: datetime) -> None:
        for task in wf.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            due = _due_at(task.internal_data.get("event_value"))
            if not isinstance(definition, TimerEventDefinition) or due is None or due > now:
                continue
            if isinstance(definition, CycleTimerEventDefinition):  # next firing counts from now
                past = datetime.now(UTC) - timedelta(milliseconds=1)
                task.internal_data["event_value"]["next"] = past.isoformat()
            else:
                task.internal_data["event_fired"] = True

    @staticmethod
    def _waiting_messages(wf: BpmnWorkflow) -> list[str]:
        return sorted({e.name for e in wf.waiting_events()
                       if e.event_type == "MessageEventDefinition"})

    def _summarize(self, wf: BpmnWorkflow, previous_state: str,
                   error: str | None = None) -> RunResult:
        try:
            state = self._dump(wf)
        except Exception as exc:  # e.g. a value JSON cannot hold
            state, error = previous_state, error or f"the instance state cannot be stored: {exc}"
        waiting = wf.waiting_events()
        timers = [_due_at(e.value) for e in waiting if e.event_type in _TIMERS]
        open_tasks = wf.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED)
        user_tasks = [_user_task(t.task_spec) for t in open_tasks
                      if t.state == TaskState.READY and t.task_spec.manual]
        if error is not None:
            status = "error"
        elif wf.is_completed():
            status = "completed"
        else:
            status = "waiting" if waiting or user_tasks else "running"
        return RunResult(
            state=state, status=status,
            waiting_messages=sorted({e.name for e in waiting
                                     if e.event_type == "MessageEventDefinition"}),
            next_timer_at=min((t for t in timers if t), default=None),
            current_steps=[_step(t.task_spec) for t in open_tasks if t.task_spec.bpmn_id],
            user_tasks=user_tasks, error=error,
            data=_jsonable(wf.data) if status == "completed" else {})
