"""ConnectWise's `conditions` query language, the subset integrations use: `path op value`
clauses (nested paths with `/`), strings in double quotes, numbers, true/false/null, dates
in brackets, operators `= != < <= > >= contains like not like in`, joined by AND / OR
(AND binds tighter; no parentheses)."""

from __future__ import annotations

import re
from collections.abc import Callable

CLAUSE = re.compile(r'^\s*([\w/.]+)\s*(not like|not contains|contains|like|<=|>=|!=|=|<|>|in)\s*(.+?)\s*$',
                    re.IGNORECASE)


class ConditionError(ValueError):
    pass


def _split(text: str, word: str) -> list[str]:
    """Splits on ` word ` outside double quotes and brackets."""
    parts, current, depth, quoted, i = [], [], 0, False, 0
    needle = f" {word} "
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[(":
            depth += 1
        elif not quoted and char in "])":
            depth -= 1
        if not quoted and depth == 0 and text[i:i + len(needle)].upper() == needle.upper():
            parts.append("".join(current))
            current = []
            i += len(needle)
            continue
        current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _literal(text: str):
    text = text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1]
    if text.startswith("(") and text.endswith(")"):
        return [_literal(part) for part in text[1:-1].split(",")]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ConditionError(f"cannot read the value {text!r}") from None


def _lookup(record: dict, path: str):
    if "/" not in path and path.lower() in ("lastupdated", "dateentered", "enteredby",
                                            "updatedby"):
        record = record.get("_info") or {}  # ConnectWise reads these from the record's _info
    value = record
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    return value


def _like(value, pattern) -> bool:
    regex = "^" + re.escape(str(pattern)).replace("%", ".*").replace("\\*", ".*") + "$"
    return re.match(regex, str(value or ""), re.IGNORECASE) is not None


def _compare(value, op: str, wanted) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        value, wanted = value.lower(), wanted.lower()
    checks: dict[str, Callable[[], bool]] = {
        "=": lambda: value == wanted, "!=": lambda: value != wanted,
        "<": lambda: value is not None and value < wanted,
        "<=": lambda: value is not None and value <= wanted,
        ">": lambda: value is not None and value > wanted,
        ">=": lambda: value is not None and value >= wanted,
        "contains": lambda: str(wanted) in str(value or ""),
        "not contains": lambda: str(wanted) not in str(value or ""),
        "like": lambda: _like(value, wanted), "not like": lambda: not _like(value, wanted),
        "in": lambda: value in (wanted if isinstance(wanted, list) else [wanted]),
    }
    return checks[op]()


def _clause(text: str) -> Callable[[dict], bool]:
    match = CLAUSE.match(text)
    if match is None:
        raise ConditionError(f"cannot read the condition {text.strip()!r}")
    path, op, raw = match.group(1), match.group(2).lower(), match.group(3)
    wanted = _literal(raw)
    return lambda record: _compare(_lookup(record, path), op, wanted)


def parse(conditions: str | None) -> Callable[[dict], bool]:
    """A predicate over records; raises ConditionError for what it cannot read."""
    if not conditions or not conditions.strip():
        return lambda record: True
    alternatives = [[_clause(c) for c in _split(part, "AND")] for part in _split(conditions, "OR")]
    return lambda record: any(all(check(record) for check in group) for group in alternatives)
