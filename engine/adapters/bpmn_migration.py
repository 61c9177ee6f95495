"""Moving a waiting process instance onto another version of its process (part of the BPMN
adapter: it works on ProcessRuntime's restored workflows).

SpiffWorkflow 3.2 aligns the two specs (`diff_workflow`: by element id, else by structure) and
re-points the instance's tasks (`migrate_workflow`, which resets the waiting and ready tasks so
that they wait again under the new definition). We allow it only when every element the
instance waits at exists in the new version with the same id, and every step it went through
is still there (its stored state names them); else the reason is given. Waiting timers keep
their due time when their definition did not change, as in Camunda's migration; a changed
timer starts again from the migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState

from engine.adapters.bpmn import OperatorCall, ProcessRuntime, RunResult, SpecHandle

_OPEN = TaskState.WAITING | TaskState.READY


@dataclass(frozen=True)
class MigrationPlan:
    waiting_at: list[str]  # ids of the elements the instance waits at
    problem: str | None  # why it cannot move; None: it can


def _never_called(name: str, params: dict) -> dict:
    raise RuntimeError(f"no operator runs while a migration is planned ({name})")


def _element(task) -> str:
    return task.task_spec.bpmn_id or task.task_spec.name


def _problem(wf, new: SpecHandle, removed: list) -> str | None:
    if wf.subprocesses:
        return "it runs a subprocess or call activity; such instances are not migrated"
    missing = [_element(t) for t in wf.get_tasks(state=_OPEN)
               if t.task_spec.name not in new.spec.task_specs]
    if missing:
        return f"it waits at {', '.join(sorted(set(missing)))}, which the new version lacks"
    gone = sorted({_element(t) for t in removed})
    if gone:
        return f"its step(s) {', '.join(gone)} are not in the new version"
    return None


def _diff(runtime: ProcessRuntime, wf, new: SpecHandle):
    registry = runtime._codec.registry()
    top, _ = diff_workflow(registry, wf, new.spec, new.subprocess_specs)
    return top


def plan(runtime: ProcessRuntime, old: SpecHandle, new: SpecHandle, state: str
         ) -> MigrationPlan:
    """Whether an instance stored as `state` (of `old`) may move to `new`, without changing it."""
    wf = runtime._restore(old, state, _never_called)
    waiting = sorted({_element(t) for t in wf.get_tasks(state=_OPEN) if t.task_spec.bpmn_id})
    return MigrationPlan(waiting, _problem(wf, new, _diff(runtime, wf, new).removed))


def _same_timer(old_spec, new_spec) -> bool:
    old, new = (getattr(s, "event_definition", None) for s in (old_spec, new_spec))
    return (old is not None and type(old) is type(new)
            and getattr(old, "expression", None) == getattr(new, "expression", None))


def _kept_timers(wf, new: SpecHandle) -> dict:
    """Due times of waiting timers whose definition the new version keeps, by task id."""
    return {task.id: task.internal_data["event_value"]
            for task in wf.get_tasks(state=TaskState.WAITING)
            if "event_value" in task.internal_data
            and _same_timer(task.task_spec, new.spec.task_specs.get(task.task_spec.name))}


def migrate(runtime: ProcessRuntime, old: SpecHandle, new: SpecHandle, state: str,
            call_operator: OperatorCall) -> RunResult | str:
    """The instance moved to `new` and run on (a RunResult), or why it cannot move (a str)."""
    wf = runtime._restore(old, state, call_operator)
    diff = _diff(runtime, wf, new)
    problem = _problem(wf, new, diff.removed)
    if problem:
        return problem
    kept = _kept_timers(wf, new)
    migrate_workflow(diff, wf, new.spec)
    wf.subprocess_specs = new.subprocess_specs
    for task_id, due in kept.items():  # the reset re-armed them from now
        task = wf.tasks.get(task_id)
        if task is not None and task.state == TaskState.WAITING:
            task.internal_data["event_value"] = due
    return runtime._advance(wf, None, state)
