"""The sandbox for every Python expression and script in uploaded BPMN, which we treat as hostile.

RestrictedPython bounds what code may *name*, not what it may *cost*, so there are two layers:

1. Policy and guards, everywhere: sandbox_policy (RestrictedPython plus our AST rules, compiled
   once per source) and sandbox_guards (size checks, a step budget with a wall-clock deadline).
2. Guards can't see into C (``sum(range(10**12))``, ``list(range(10**10))``), so code runs in a
   pool of persistent ``python -I sandbox.py`` children (exec'd with close_fds: no inherited DB
   sockets, no fork of a big parent) under RLIMIT_AS/RLIMIT_CPU with a wall-clock kill and lazy
   respawn (this module; the child's side is sandbox_child). ~0.1-0.2 ms per call on a warm child.

Callers use ``run_code`` (in-process, a few µs) only for code bpmn_validation.is_bounded proves
cheap, and ``ScriptSandbox.run`` (a child) for everything else."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

if __name__ == "__main__":  # a sandbox child: `python -I` leaves our package off sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from engine.adapters.sandbox_child import decode, encode  # noqa: E402
from engine.adapters.sandbox_guards import (  # noqa: E402, F401 - the sandbox's public names
    BUILTINS,
    MAX_DATA_BYTES,
    ScriptError,
    run_code,
)
from engine.adapters.sandbox_policy import (  # noqa: E402, F401
    FILENAME,
    compile_source,
    normalize,
    parse_error,
    restricted_compile,
)


class _Child:
    """One persistent sandbox process, used by one thread at a time; killed on any failure."""

    def __init__(self, memory_mb: int) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv: this file, our interpreter
            [sys.executable, "-I", os.path.abspath(__file__), str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            close_fds=True, cwd="/", env={"LC_ALL": "C.UTF-8"}, start_new_session=True)
        self.buffer = bytearray()
        self.read_line(15.0, "the script sandbox did not start")

    def call(self, payload: bytes, timeout: float) -> bytes:
        try:
            self.proc.stdin.write(payload + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.kill()
            raise ScriptError("SandboxUnavailable", "the sandbox process is gone") from None
        return self.read_line(timeout * 1.25 + 0.5, f"the script ran longer than {timeout:g} s and was"
                              " stopped")

    def read_line(self, wait: float, timeout_message: str) -> bytes:
        deadline, fd = time.monotonic() + wait, self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        try:
            while b"\n" not in self.buffer:
                if deadline < time.monotonic():
                    raise ScriptError("LimitExceeded", timeout_message)
                if poller.poll(max(deadline - time.monotonic(), 0) * 1000):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk or len(self.buffer) > MAX_DATA_BYTES * 2:
                        raise ScriptError("LimitExceeded", "the sandbox process stopped (CPU or"
                                          " memory limit)")
                    self.buffer += chunk
        except BaseException:
            self.kill()
            raise
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class ScriptSandbox:
    """Runs code in the child processes; thread-safe; starts children lazily."""

    def __init__(self, timeout: float = 2.0, memory_mb: int = 256, max_children: int = 4) -> None:
        self.timeout, self.memory_mb, self.max_children = timeout, memory_mb, max_children
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: list[_Child] = []
        self._slots = threading.BoundedSemaphore(self.max_children)

    def run(self, source: str, mode: str, data: dict):
        """Like run_code, in a child: ``eval`` returns the value of ``source`` over ``data``;
        ``exec`` leaves the script's variables in ``data``. Raises ScriptError/SyntaxError."""
        compile_source(source, mode)  # syntax and policy errors without a round trip
        try:
            payload = encode({"mode": mode, "source": source, "data": data,
                              "timeout": self.timeout})
        except (TypeError, ValueError) as exc:
            raise ScriptError("TypeError", str(exc)) from None
        if len(payload) > MAX_DATA_BYTES:
            raise ScriptError("LimitExceeded", "the task data is too large for a script")
        reply = decode(self._call(payload))
        if not reply["ok"]:
            raise ScriptError(reply["kind"], reply["detail"], reply.get("line"))
        if mode == "exec":
            data.clear()
            data.update(reply["data"])
        return reply["value"]

    def _call(self, payload: bytes) -> bytes:
        if os.getpid() != self._pid:  # forked: the children belong to the parent
            with self._lock:
                self._reset()
        with self._slots:
            with self._lock:
                child = self._idle.pop() if self._idle else None
            if child is not None and child.proc.poll() is not None:
                child.kill()  # reaps it and closes its pipes
                child = None
            child = child or self._spawn()
            reply = child.call(payload, self.timeout)
            with self._lock:
                self._idle.append(child)
        return reply

    def _spawn(self) -> _Child:
        try:
            return _Child(self.memory_mb)
        except OSError as exc:
            raise ScriptError("SandboxUnavailable", f"cannot start the sandbox: {exc}") from None

    def close(self) -> None:
        """Stops idle children; later calls start new ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


if __name__ == "__main__":
    from engine.adapters.sandbox_child import child_main

    child_main(int(sys.argv[1]))
