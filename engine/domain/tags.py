"""The tag grammar of mail exchanged with providers: one `Label: value` per line.

Labels are configurable per provider and matched case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_LABELS = {
    "task_id": "TaskId",
    "external_reference": "ExternalReference",
    "token": "Token",
    "action": "Action",
}
SUBJECT_TASK = re.compile(r"\[Task\s*#\s*(\d+)\]", re.IGNORECASE)


def labels_for(overrides: dict | None) -> dict[str, str]:
    labels = dict(DEFAULT_LABELS)
    labels.update({k: v for k, v in (overrides or {}).items() if k in DEFAULT_LABELS and v})
    return labels


def render_tags(labels: dict[str, str], values: dict[str, object]) -> str:
    """Renders the tags whose value is known, in a stable order."""
    lines = [f"{labels[key]}: {values[key]}" for key in DEFAULT_LABELS
             if values.get(key) not in (None, "")]
    return "\n".join(lines)


def subject_for(task_id: int, text: str) -> str:
    return f"[Task #{task_id}] {text}"


@dataclass(frozen=True)
class ParsedTags:
    values: dict[str, str]
    text: str  # the message text: what stands above the first tag line


def parse_tags(body: str, labels: dict[str, str]) -> ParsedTags:
    """Finds tag lines (case-insensitive labels) and the free text above them."""
    by_label = {label.lower(): key for key, label in labels.items()}
    values: dict[str, str] = {}
    first_tag_line: int | None = None
    lines = body.splitlines()
    for number, line in enumerate(lines):
        label, sep, value = line.strip().partition(":")
        key = by_label.get(label.strip().lower()) if sep else None
        if key and key not in values:
            values[key] = value.strip()
            first_tag_line = number if first_tag_line is None else first_tag_line
    text_lines = lines if first_tag_line is None else lines[:first_tag_line]
    return ParsedTags(values=values, text="\n".join(text_lines).strip())


def task_id_from_subject(subject: str) -> int | None:
    match = SUBJECT_TASK.search(subject or "")
    return int(match.group(1)) if match else None
