"""The sandbox's run-time layer: what code may *cost*, and running it in this process.

Size checks on the operators the policy rewrote (sandbox_policy), width-taking string methods
and format widths; a step budget with a wall-clock deadline (a ``BaseException`` scripts
can't catch); the builtins scripts get. ``run_code`` runs restricted code over task data here;
the sandbox children (sandbox_child) run it the same way behind OS limits."""

from __future__ import annotations

import datetime as dt
import operator
import re
import sys
import time
import traceback

from RestrictedPython import Guards, safe_builtins
from RestrictedPython.PrintCollector import PrintCollector

from engine.adapters.sandbox_policy import FILENAME, compile_source

MAX_SEQUENCE = 10_000_000  # items or characters in one value
MAX_INT_BITS = 100_000  # ~30,000 decimal digits
MAX_FORMAT_WIDTH = 10_000
MAX_STEPS = 50_000_000  # loop iterations and calls per run, besides the deadline
MAX_DATA_BYTES = 8 * 1024 * 1024  # task data crossing to or from a child, as JSON


class ScriptError(Exception):
    """A script or expression failed; ``str()`` is readable and always works."""

    def __init__(self, kind: str, detail: str, line: int | None = None) -> None:
        self.kind, self.detail, self.line = kind, detail, line
        super().__init__(f"{kind}: {detail}" + (f" (line {line})" if line else ""))


class _LimitExceeded(BaseException):  # noqa: N818 - BaseException: `except Exception` can't eat it
    pass


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
