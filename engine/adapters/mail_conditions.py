"""The conditions of automated e-mail rules, and a time-bounded regular-expression search.

Regular expressions of rules run in a helper process, so that a runaway one can be stopped.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
from dataclasses import dataclass

from engine.adapters.mail_parsing import ParsedMail

RULE_FIELDS = ("from", "to", "subject", "body")
RULE_MATCHES = ("contains", "regex")
MATCH_LIMIT = 100_000  # characters of a field that a condition looks at
REGEX_TIMEOUT = 0.5  # seconds
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Condition:
    field: str
    match: str
    value: str


def field_value(mail: ParsedMail, field: str) -> str:
    values = {"from": mail.from_header or mail.from_addr, "to": mail.to_header,
              "subject": mail.subject, "body": mail.text}
    return values[field][:MATCH_LIMIT]


# The helper is a bare interpreter running only this (stdlib) code, so starting it never
# re-imports the application's main module, whatever embeds the engine.
_REGEX_HELPER = r"""
import json, re, sys
compiled = {}
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    pattern, text = json.loads(line)
    try:
        if pattern not in compiled:
            compiled[pattern] = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
        answer = "1" if compiled[pattern].search(text) else "0"
    except re.error:
        answer = "0"
    sys.stdout.write(answer + "\n"); sys.stdout.flush()
"""


class RegexGuard:
    """Searches with a time bound. Python's `re` cannot be interrupted, so searches run in a
    helper process that is killed and replaced when one overruns (catastrophic backtracking)."""

    def __init__(self, timeout: float = REGEX_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def _answer(self, timeout: float) -> str | None:
        """One line from the helper, or None when it does not come in time."""
        stream = self._process.stdout
        ready, _, _ = select.select([stream], [], [], timeout)
        return stream.readline().decode().strip() if ready else None

    def _ensure(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed code
                [sys.executable, "-I", "-c", _REGEX_HELPER], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, bufsize=0)
            # The time bound is for searches, not for starting Python: wait for the helper.
            if self._answer(STARTUP_TIMEOUT) != "ready":
                self.close()
                raise RuntimeError("the regular-expression helper process did not start")
        return self._process

    def search(self, pattern: str, text: str) -> bool | None:
        """True/False, or None when the search took longer than the time bound."""
        with self._lock:
            process = self._ensure()
            process.stdin.write(json.dumps([pattern, text]).encode() + b"\n")
            answer = self._answer(self.timeout)
            if answer in ("0", "1"):
                return answer == "1"
            self.close()
            return None

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            for stream in (self._process.stdin, self._process.stdout):
                stream.close()
        self._process = None


def condition_holds(condition: Condition, mail: ParsedMail, guard: RegexGuard) -> bool | None:
    """Case-insensitive; None when a regular expression overran its time bound."""
    text = field_value(mail, condition.field)
    if condition.match == "contains":
        return condition.value.casefold() in text.casefold()
    return guard.search(condition.value, text)

