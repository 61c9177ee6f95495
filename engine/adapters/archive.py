"""Archives of purged rows: one JSON object per line, appended, on disk before the rows go."""

from __future__ import annotations

import json
import os
from pathlib import Path


class JsonLinesArchive:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, rows: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, default=str, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())  # kept for sure before the rows are deleted
