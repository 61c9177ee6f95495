"""Uploaded BPMN is hostile: escapes are refused and resource bombs end only their own instance."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from engine.adapters.bpmn import ProcessRuntime
from engine.adapters.sandbox import ScriptError, ScriptSandbox

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "bpmn"
VARIABLES = {"task": {"id": 7, "title": "Printer jams", "priority": 3},
             "event": {"type": "new_assignment"}, "ticket": {"id": 31}, "provider": {}}
HANG_GUARD_SECONDS = 10  # a bomb must end its instance, not hang the caller


@pytest.fixture(scope="module")
def runtime():
    runtime = ProcessRuntime(script_timeout=0.5, script_memory_mb=256)
    yield runtime
    runtime.close()


def no_operators(name, params):
    raise AssertionError(f"no operator expected, got {name}")


def run_script(runtime, script: str):
    xml = (FIXTURES / "script_task.bpmn").read_text().replace("SCRIPT", escape(script))
    spec = runtime.load(("script", script), xml.encode())
    return runtime.start(spec, dict(VARIABLES), no_operators)


def run_condition(runtime, condition: str):
    xml = (FIXTURES / "gateway.bpmn").read_text().replace("CONDITION", escape(condition))
    spec = runtime.load(("condition", condition), xml.encode())
    return runtime.start(spec, dict(VARIABLES), lambda name, params: {})


def assert_still_works(runtime):
    result = run_script(runtime, "total = 0\nfor i in range(task['priority']):\n    total += i")
    assert result.status == "completed", result.error
    assert result.data["total"] == 3


ESCAPES = [
    "import os",
    "pid = __import__('os').getpid()",
    "text = open('/etc/hostname').read()",
    "x = eval('1 + 1')",
    "exec('x = 1')",
    "code = compile('1', 'f', 'eval')",
    "x = getattr(task, 'items')",
    "g = globals()",
    "t = type(task)",
    "s = '{0.__class__}'.format(task)",
    "classes = ().__class__.__bases__[0].__subclasses__()",
    "s = f'{task.__class__}'",
    "_hidden = 1",
]


@pytest.mark.parametrize("script", ESCAPES)
def test_script_escapes_end_the_instance_in_error(runtime, script):
    result = run_script(runtime, script)

    assert result.status == "error"
    assert "run_script" in result.error
    assert "Traceback" not in result.error


def test_escape_in_a_gateway_condition_ends_the_instance_in_error(runtime):
    result = run_condition(runtime, "__import__('os').system('true') == 0")

    assert result.status == "error"
    assert "decide" in result.error


BOMBS = [
    ("while True: pass", "longer than"),
    ("while True:\n    pass", "longer than"),
    ("total = sum(range(10**12))", "longer than"),
    ("s = 'x' * 10**10", "limit"),
    ("n = 10**10**7", "limit"),
    ("zeros = [0] * 10**9", "limit"),
    ("s = 'x'.ljust(10**10)", "limit"),
    ("s = 'x'\nwhile True:\n    s = s + s", "limit"),
    ("numbers = list(range(10**10))", "memory"),
    ("s = f'{1:>9999999999}'", "limit"),
    ("items = [1]\nfor i in range(64):\n    items.extend(items)", "memory"),
    ("n = round(1, -10**9)", "longer than"),
    ("while True:\n    try:\n        while True: pass\n    except Exception:\n        pass",
     "longer than"),
]


@pytest.mark.parametrize(("script", "reason"), BOMBS)
def test_resource_bombs_end_only_their_instance(runtime, script, reason):
    started = time.monotonic()

    result = run_script(runtime, script)

    assert time.monotonic() - started < HANG_GUARD_SECONDS
    assert result.status == "error"
    assert reason in result.error and "run_script" in result.error
    assert_still_works(runtime)


@pytest.mark.parametrize("condition", [
    "sum(range(10**12)) > 0", "len('x' * 10**10) > 0", "len(list(range(10**10))) > 0",
])
def test_bombs_in_gateway_conditions_end_the_instance(runtime, condition):
    result = run_condition(runtime, condition)

    assert result.status == "error"
    assert "decide" in result.error
    assert_still_works(runtime)


def test_ordinary_scripts_keep_working(runtime):
    script = "\n".join([
        "words = [w.lower() for w in task['title'].split()]",
        "label = f\"{task['id']:>5}: {', '.join(sorted(words))}\"",
        "due = datetime(2025, 3, 4, tzinfo=timezone.utc) + timedelta(days=task['priority'])",
        "due_text = due.isoformat()",
        "counts = {}",
        "for w in words:",
        "    counts[w] = counts.get(w, 0) + 1",
        "del due",
    ])

    result = run_script(runtime, script)

    assert result.status == "completed", result.error
    assert result.data["label"] == "    7: jams, printer"
    assert result.data["due_text"] == "2025-03-07T00:00:00+00:00"
    assert result.data["counts"] == {"printer": 1, "jams": 1}


def test_a_bomb_does_not_stop_other_instances_running_in_parallel(runtime):
    results: dict[int, object] = {}

    def run(index: int, script: str) -> None:
        results[index] = run_script(runtime, script)

    threads = [threading.Thread(target=run, args=(0, "while True:\n    pass"))]
    threads += [threading.Thread(target=run, args=(i, f"total = sum([{i}] * 3)"))
                for i in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_SECONDS)

    assert results[0].status == "error"
    for i in range(1, 5):
        assert results[i].status == "completed", results[i].error
        assert results[i].data["total"] == 3 * i


def test_sandbox_restarts_after_close(runtime):
    runtime.close()

    assert_still_works(runtime)


def test_datetimes_cross_into_the_child_and_back():
    sandbox = ScriptSandbox(timeout=1.0)
    start = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
    data = {"start": start}
    try:
        sandbox.run("for i in range(1):\n    due = start + timedelta(hours=i + 2)", "exec", data)
        with pytest.raises(ScriptError, match="ZeroDivisionError"):
            sandbox.run("1 / 0 if True else [x for x in start]", "eval", {"start": start})
    finally:
        sandbox.close()

    assert data == {"start": start, "due": start + timedelta(hours=2), "i": 0}


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
def test_child_does_not_inherit_open_sockets():
    sandbox = ScriptSandbox(timeout=1.0)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sandbox.run("x = [i for i in range(3)]", "exec", {})
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _parent_pid(p) == os.getpid() and b"sandbox.py" in _cmdline(p)]
        assert children
        links = [os.readlink(fd) for child in children for fd in (child / "fd").iterdir()]
    sandbox.close()

    assert not [link for link in links if link.startswith("socket:")]


def _parent_pid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
