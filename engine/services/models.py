"""Process models: validate, version and store uploaded BPMN."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.adapters import orm
from engine.adapters.bpmn import validate_bpmn
from engine.services.operators import OPERATORS
from engine.services.views import model_view

BUNDLED_DIR = Path(__file__).resolve().parent.parent.parent / "processes"


def deploy_process_model(uow, data: bytes, filename: str, uploaded_by: str = "system",
                         forms: dict | None = None, skip_unchanged: bool = False) -> dict:
    """Validates a BPMN upload and stores it as the next version of its process.

    Every upload is a new version. With `skip_unchanged` (init-db, `liaison deploy`), a file
    identical to the latest version is left as it is, so repeated deploys stay idempotent.
    """
    parsed = validate_bpmn(data, filename, OPERATORS,
                           max_bytes=uow.context.settings.bpmn_max_bytes)
    checksum = hashlib.sha256(data).hexdigest()
    latest = uow.repo.latest_model(parsed.process_id)
    unchanged = latest is not None and latest.checksum == checksum and latest.forms == (forms or {})
    if skip_unchanged and unchanged:
        return {**model_view(latest), "created": False}
    model = orm.ProcessModel(process_id=parsed.process_id, name=parsed.name,
                             version=(latest.version + 1) if latest else 1,
                             filename=Path(filename).name or "upload.bpmn", bpmn_xml=data,
                             checksum=checksum, forms=forms or {}, uploaded_by=uploaded_by)
    uow.repo.add(model)
    uow.commit()
    return {**model_view(model), "created": True}


def bundled_files(directory: Path = BUNDLED_DIR) -> list[Path]:
    return sorted(directory.glob("*.bpmn"))


def bundled_forms(bpmn: Path) -> dict:
    """Form definitions (JSON) that stand next to a BPMN file, by file name."""
    return {p.name: p.read_text(encoding="utf-8")
            for p in sorted(bpmn.parent.glob(f"{bpmn.stem}*.json"))}
