"""Helpers several test modules share: the console script, and waiting for a condition."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def liaison(*args: str) -> list[str]:
    """The `liaison` console script next to this interpreter (as `make test` installs it),
    else the same entry point through `python -m liaison_cli`."""
    script = Path(sys.executable).with_name("liaison")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "liaison_cli"]
    return [*base, *args]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
