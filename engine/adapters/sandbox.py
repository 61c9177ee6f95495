"""The sandbox for every Python expression and script in uploaded BPMN, which we treat as hostile.

RestrictedPython bounds what code may *name*, not what it may *cost*, so there are two layers:

1. Policy and guards, everywhere: RestrictedPython plus our AST rules (no imports, classes, bare
   ``except:`` or ``_`` names); ``*``, ``**``, ``<<``, ``+``, ``%`` are size-checked; loops, calls
   and iterations tick a budget with a wall-clock deadline (a ``BaseException`` that scripts can't
   catch); width-taking string methods and format-spec widths are checked.
2. Guards can't see into C (``sum(range(10**12))``, ``list(range(10**10))``), so code runs in a
   pool of persistent ``python -I sandbox.py`` children (exec'd with close_fds: no inherited DB
   sockets, no fork of a big parent) under RLIMIT_AS/RLIMIT_CPU with a wall-clock kill and lazy
   respawn; data crosses as JSON lines, never pickle. ~0.1-0.2 ms per call on a warm child.

Callers use ``run_code`` (in-process, a few µs) only for code bpmn_validation.is_bounded proves
cheap, and ``ScriptSandbox.run`` (a child) for everything else."""
# ruff: noqa: N802 - ast.NodeTransformer dictates the visit_* method names

from __future__ import annotations

import ast
import datetime as dt
import functools
import json
import operator
import os
import re
import select
import subprocess
import sys
import textwrap
import threading
import time
import traceback

from RestrictedPython import Guards, compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import RestrictingNodeTransformer

MAX_SEQUENCE = 10_000_000  # items or characters in one value
MAX_INT_BITS = 100_000  # ~30,000 decimal digits
MAX_FORMAT_WIDTH = 10_000
MAX_STEPS = 50_000_000  # loop iterations and calls per run, besides the deadline
MAX_DATA_BYTES = 8 * 1024 * 1024  # task data crossing to or from a child, as JSON
FILENAME = "<script>"
_UNAVAILABLE = frozenset({"open", "compile", "getattr", "globals", "locals", "vars"})


class ScriptError(Exception):
    """A script or expression failed; ``str()`` is readable and always works."""

    def __init__(self, kind: str, detail: str, line: int | None = None) -> None:
        self.kind, self.detail, self.line = kind, detail, line
        super().__init__(f"{kind}: {detail}" + (f" (line {line})" if line else ""))


class _LimitExceeded(BaseException):  # noqa: N818 - BaseException: `except Exception` can't eat it
    pass


def _call(name: str, args: list, at: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(ast.Name(name, ast.Load()), args, []), at)


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's rules plus ours (see the module docstring)."""

    def visit_Import(self, node):  # also ImportFrom and ClassDef
        what = "class definitions" if isinstance(node, ast.ClassDef) else "import statements"
        self.error(node, f"{what} are not allowed")
        return node

    visit_ImportFrom = visit_ClassDef = visit_Import  # noqa: N815

    def visit_Name(self, node):
        if node.id in _UNAVAILABLE:
            self.error(node, f"'{node.id}' is not available in scripts")
        return super().visit_Name(node)

    def visit_ExceptHandler(self, node):
        if node.type is None:
            self.error(node, "a bare 'except:' is not allowed; name the exception")
        return super().visit_ExceptHandler(node)

    def _tick_first(self, node):
        node.body.insert(0, ast.copy_location(ast.Expr(_call("_tick_", [], node)), node))
        return node

    def visit_While(self, node):
        return self._tick_first(super().visit_While(node))

    def visit_FunctionDef(self, node):
        return self._tick_first(super().visit_FunctionDef(node))

    def visit_Lambda(self, node):
        node = super().visit_Lambda(node)
        node.body = ast.copy_location(ast.BoolOp(ast.Or(), [_call("_tick_", [], node), node.body]),
                                      node)
        return node

    def visit_BinOp(self, node):
        node = super().visit_BinOp(node)
        symbol = _CHECKED_OPS.get(type(node.op))
        if symbol is None:
            return node
        return _call("_binop_", [ast.Constant(symbol), node.left, node.right], node)

    def visit_FormattedValue(self, node):
        node = super().visit_FormattedValue(node)
        if node.format_spec is not None:
            args = [node.value, node.format_spec, ast.Constant(node.conversion)]
            node.value, node.format_spec, node.conversion = _call("_format_", args, node), None, -1
        return node

    def visit_Module(self, node):
        return ast.fix_missing_locations(super().visit_Module(node))

    def visit_Expression(self, node):
        return ast.fix_missing_locations(super().visit_Expression(node))


_CHECKED_OPS = {ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}
_ERROR_LINE = re.compile(r"^Line (\d+): (SyntaxError: )?(.*?)(?: at statement: .*)?$", re.S)


def normalize(source: str, mode: str) -> str:
    """BPMN text as Python: expressions stripped, scripts dedented (their lines kept)."""
    return textwrap.dedent(source).rstrip() if mode == "exec" else source.strip()


def restricted_compile(source: str, mode: str):
    """RestrictedPython's CompileResult for BPMN text under our policy."""
    compile_fn = compile_restricted_exec if mode == "exec" else compile_restricted_eval
    return compile_fn(normalize(source, mode), filename=FILENAME, policy=_Policy)


def parse_error(text: str) -> tuple[str, int | None]:
    """(message, line) of one of RestrictedPython's "Line N: …" errors."""
    match = _ERROR_LINE.match(text)
    if match is None:
        return text, None
    return ("syntax error: " if match.group(2) else "") + match.group(3), int(match.group(1))


@functools.lru_cache(maxsize=2048)
def compile_source(source: str, mode: str):
    """Restricted code for ``source``; raises SyntaxError with its line (Spiff needs one)."""
    result = restricted_compile(source, mode)
    if result.errors:
        message, line = parse_error(result.errors[0])
        raise SyntaxError(message, (FILENAME, line or 1, 0, ""))
    return result.code


def _too_big(what: str, size: int) -> _LimitExceeded:
    return _LimitExceeded(f"{what} {size:,} would exceed the sandbox limit")


def _int_bits(symbol: str, left: int, right: int) -> int:
    if symbol == "**":
        return left.bit_length() * right if right > 0 and abs(left) > 1 else 0
    if symbol == "<<":
        return left.bit_length() + max(right, 0)
    return left.bit_length() + right.bit_length() if symbol == "*" else 0


def _length(symbol: str, left, right) -> int:
    if symbol == "+":
        sized = hasattr(left, "__len__") and hasattr(right, "__len__")
        return len(left) + len(right) if sized else 0
    count, seq = (right, left) if isinstance(right, int) else (left, right)
    return len(seq) * count if isinstance(count, int) and hasattr(seq, "__len__") else 0


def _check_binop(symbol: str, left, right) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if _int_bits(symbol, left, right) > MAX_INT_BITS:
            raise _too_big("a number with bits", _int_bits(symbol, left, right))
    elif symbol in ("*", "+"):
        if _length(symbol, left, right) > MAX_SEQUENCE:
            raise _too_big("a sequence of length", _length(symbol, left, right))
    elif symbol == "%" and isinstance(left, str):
        for match in re.finditer(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?", left):
            _check_widths(" ".join(g for g in match.groups() if g))


def _check_widths(spec: str) -> None:
    if "*" in spec or any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", spec)):
        raise _LimitExceeded("a format width or precision exceeds the sandbox limit")


_OPS = {"*": operator.mul, "**": operator.pow, "<<": operator.lshift, "+": operator.add,
        "%": operator.mod}
_INPLACE = {sym + "=": getattr(operator, "i" + name) for sym, name in (
    ("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "truediv"), ("//", "floordiv"), ("%", "mod"),
    ("**", "pow"), ("<<", "lshift"), (">>", "rshift"), ("&", "and"), ("|", "or"), ("^", "xor"))}
_CONVERSIONS = {115: str, 114: repr, 97: ascii}  # !s !r !a
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})  # (width, ...) -> that size


def _binop(symbol: str, left, right):
    _check_binop(symbol, left, right)
    return _OPS[symbol](left, right)


def _inplacevar(op: str, left, right):
    _check_binop(op[:-1], left, right)
    return _INPLACE[op](left, right)


def _format(value, spec: str, conversion: int) -> str:
    _check_widths(spec.replace("*", ""))
    return format(_CONVERSIONS[conversion](value) if conversion in _CONVERSIONS else value, spec)


def _getattr(obj, name):
    value = Guards.safer_getattr_raise(obj, name)
    if name not in _WIDTH_METHODS or not isinstance(obj, (str, bytes, bytearray)):
        return value

    def guarded(width, *args):
        if isinstance(width, int) and width > MAX_SEQUENCE:
            raise _too_big("a string of length", width)
        return value(width, *args)
    return guarded


def _pow(base, exp, mod=None):
    return _binop("**", base, exp) if mod is None else pow(base, exp, mod)


_EXTRA_BUILTINS = {
    "dict": dict, "list": list, "tuple": tuple, "set": set, "frozenset": frozenset,
    "sorted": sorted, "reversed": reversed, "zip": zip, "enumerate": enumerate, "min": min,
    "max": max, "sum": sum, "any": any, "all": all, "map": map, "filter": filter, "pow": _pow,
    "datetime": dt.datetime, "date": dt.date, "timedelta": dt.timedelta, "timezone": dt.timezone,
}
_REMOVED = {"__build_class__", "BaseException", "KeyboardInterrupt", "SystemExit", "GeneratorExit",
            "_getattr_"}
BUILTINS = {k: v for k, v in {**safe_builtins, **_EXTRA_BUILTINS}.items() if k not in _REMOVED}


class _Budget:
    """Counts loop iterations and calls; past the deadline every further tick raises again."""

    __slots__ = ("deadline", "steps", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout, self.deadline, self.steps = timeout, time.monotonic() + timeout, 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps & 15 == 0 or self.steps > MAX_STEPS:
            if self.steps > MAX_STEPS:
                raise _LimitExceeded(f"more than {MAX_STEPS:,} loop iterations")
            if time.monotonic() > self.deadline:
                raise _LimitExceeded(f"the script ran longer than {self.timeout:g} s")

    def getiter(self, iterable):
        for item in iter(iterable):
            self.tick()
            yield item


def _globals(data: dict, budget: _Budget) -> dict:
    return {**data, "__builtins__": BUILTINS, "_getattr_": _getattr, "_getitem_": operator.getitem,
            "_getiter_": budget.getiter, "_tick_": budget.tick, "_write_": Guards.full_write_guard,
            "_iter_unpack_sequence_": Guards.guarded_iter_unpack_sequence,
            "_unpack_sequence_": Guards.guarded_unpack_sequence, "_inplacevar_": _inplacevar,
            "_apply_": lambda f, *a, **kw: f(*a, **kw), "_binop_": _binop, "_format_": _format,
            "_print_": PrintCollector}


_INJECTED = frozenset(_globals({}, _Budget(0))) | {"_print"}


def _describe(exc: BaseException, memory_mb: int | None = None) -> ScriptError:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    line = frames[-1].lineno if frames else None
    if isinstance(exc, _LimitExceeded):
        return ScriptError("LimitExceeded", str(exc), line)
    if isinstance(exc, MemoryError):
        limit = f"its {memory_mb} MB" if memory_mb else "the"
        return ScriptError("MemoryError", f"the script exceeded {limit} memory limit", line)
    try:
        detail = str(exc)
    except Exception:  # a broken __str__ must not hide the failure
        detail = repr(exc.args)
    return ScriptError(type(exc).__name__, detail, line)


def run_code(source: str, mode: str, data: dict, timeout: float, memory_mb: int | None = None):
    """Runs restricted code over ``data`` in this process: ``eval`` returns the value, ``exec``
    leaves the script's variables in ``data``. Raises ScriptError, or SyntaxError (with line)."""
    code = compile_source(source, mode)
    glb = _globals(data, _Budget(timeout))
    try:
        if mode == "eval":
            return eval(code, glb)  # noqa: S307 - restricted code, guarded globals
        exec(code, glb)  # noqa: S102 - restricted code, guarded globals
    except (Exception, _LimitExceeded) as exc:  # each failure becomes one readable error
        error = _describe(exc, memory_mb)
    else:
        data.clear()
        data.update((k, v) for k, v in glb.items() if k not in _INJECTED
                    and not callable(v) and not isinstance(v, type(sys)))
        return None
    glb.clear()  # drop a failed bomb's data before anything else allocates
    raise error


_TAGS = {"$datetime": dt.datetime.fromisoformat, "$date": dt.date.fromisoformat,
         "$timedelta": lambda seconds: dt.timedelta(seconds=seconds)}


def _tag(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return {"$datetime" if isinstance(value, dt.datetime) else "$date": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": value.total_seconds()}
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be stored in task data")


def _untag(obj: dict):
    key = next(iter(obj), None) if len(obj) == 1 else None
    return _TAGS[key](obj[key]) if key in _TAGS else obj


def encode(value) -> bytes:
    """JSON for the child protocol; datetimes, dates and timedeltas survive the trip."""
    return json.dumps(value, default=_tag, separators=(",", ":")).encode()


def decode(raw: bytes):
    return json.loads(raw, object_hook=_untag)


def _limit_resources(memory_mb: int, cpu_seconds: float | None = None) -> None:
    import resource

    if cpu_seconds is None:
        limit = memory_mb * 1024 * 1024
        for kind, value in ((resource.RLIMIT_AS, limit), (resource.RLIMIT_FSIZE, 0),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(kind, (value, value))
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)  # RLIMIT_CPU counts the child's whole life
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = int(usage.ru_utime + usage.ru_stime + cpu_seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (
        soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _serve(request: dict, memory_mb: int) -> dict:
    data, mode, timeout = request["data"], request["mode"], request["timeout"]
    _limit_resources(memory_mb, timeout)
    try:
        value = run_code(request["source"], mode, data, timeout, memory_mb)
    except SyntaxError as exc:
        return {"ok": False, "kind": "SyntaxError", "detail": exc.msg, "line": exc.lineno}
    except ScriptError as exc:
        return {"ok": False, "kind": exc.kind, "detail": exc.detail, "line": exc.line}
    return {"ok": True, "value": value, "data": data if mode == "exec" else None}


def _child_main(memory_mb: int) -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing but replies may reach the parent's pipe
    _limit_resources(memory_mb)
    out.write(b'{"ready":true}\n')
    out.flush()
    for raw in sys.stdin.buffer:
        try:
            reply = encode(_serve(decode(raw), memory_mb))
        except (TypeError, ValueError, MemoryError) as exc:  # the variables could not be encoded
            detail = str(exc)[:500] or f"the script's variables exceed the {memory_mb} MB limit"
            reply = encode({"ok": False, "kind": type(exc).__name__, "detail": detail})
        if len(reply) > MAX_DATA_BYTES:
            reply = encode({"ok": False, "kind": "LimitExceeded", "detail": "the script left "
                            f"more than {MAX_DATA_BYTES:,} bytes of data"})
        out.write(reply + b"\n")
        out.flush()


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
    _child_main(int(sys.argv[1]))
