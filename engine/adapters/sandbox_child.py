"""The sandbox child's side of the pipe, and the JSON lines both sides speak.

A child is ``python -I sandbox.py MEMORY_MB`` (see sandbox.ScriptSandbox): it limits its own
address space, then answers one request per line (mode, source, data, timeout) with
``run_code`` under a CPU limit. Data crosses as JSON, never pickle; datetimes, dates and
timedeltas are tagged so that they survive the trip."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys

from engine.adapters.sandbox_guards import MAX_DATA_BYTES, ScriptError, run_code

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


def child_main(memory_mb: int) -> None:
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
