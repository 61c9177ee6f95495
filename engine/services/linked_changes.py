"""Changes a provider made on a ticket linked to one of our tasks, mapped to the inbound use
cases every channel uses (CONTRACT §7), so that processes and BPMN messages behave alike:

- a note -> Update/In;
- *Work completed*, or any status the provider marks resolved -> Reassigned/In with the
  resolution as solution;
- *Info Needed* / *Approval Required* -> Reassigned/In without a solution, the message naming
  the status;
- the provider closing its ticket -> a history note only (the task stays open);
- any other status -> a history note.
"""

from __future__ import annotations

from engine.adapters import orm
from engine.adapters.twoway_repository import TwowayRepository
from engine.exceptions import Conflict
from engine.services import inbound
from engine.services.inbound import Inbound

RETURNING = ("info needed", "approval required")
RESOLVED = ("work completed",)
TRUNCATED = "\n\n[truncated by liaison: the provider's text had {n} characters]"


class Skipped(Exception):
    """The change is recorded as skipped, with the reason (no error: nothing to repair)."""


def returns_task(status: str) -> bool:
    return status.strip().lower() in RETURNING


def is_resolved(status: str, resolved_flag: bool = False) -> bool:
    return resolved_flag or status.strip().lower() in RESOLVED


def fit(text: str, limit: int = inbound.MAX_TEXT) -> str:
    """Text within our limits: a longer note is cut, saying so (never refused)."""
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    marker = TRUNCATED.format(n=len(text))
    return text[:limit - len(marker)] + marker


def _source(provider: orm.Provider, item: orm.InboundItem) -> Inbound:
    channel = item.payload.get("channel") or provider.channel
    return Inbound(provider=provider.name, channel=channel,
                   request_id=f"{item.ticket_ref}:{item.change_key}"[:200])


def _history(uow, item: orm.InboundItem, task: orm.Task, kind: str, text: str,
             provider: orm.Provider) -> None:
    uow.repo.insert_note(task_id=task.id, kind=kind, text=text, author=provider.name)
    task.updated_at = orm.utcnow()
    uow.commit()


def _status(uow, provider: orm.Provider, item: orm.InboundItem, link: orm.ProviderTicket,
            task: orm.Task) -> None:
    payload = item.payload
    status = str(payload.get("status") or "").strip() or "(no status)"
    link.status = status[:120]
    ref = item.ticket_ref
    if payload.get("closed"):
        link.closed = True
        if task.status == "closed":
            raise Skipped(f"task {task.id} is closed here already (our own close)")
        _history(uow, item, task, "external_closed", f"{provider.name} closed its ticket "
                 f"{ref} (status {status}); the task stays open here.", provider)
        return
    link.closed = False
    if is_resolved(status, bool(payload.get("resolved"))):
        solution = fit(payload.get("resolution") or f"{provider.name} set status {status}.")
        inbound.reassign_external(uow, task.id, solution=solution,
                                  message=f"{provider.name} set status {status} on ticket {ref}.",
                                  source=_source(provider, item))
    elif returns_task(status):
        text = fit(payload.get("message") or "")
        message = f"{provider.name} set status {status} on ticket {ref}" + (
            f": {text}" if text else ".")
        inbound.reassign_external(uow, task.id, message=message, source=_source(provider, item))
    else:
        _history(uow, item, task, "external_status",
                 f"{provider.name} set status {status} on ticket {ref}.", provider)


def apply_change(uow, provider: orm.Provider, item: orm.InboundItem) -> None:
    """Applies a note or status item of a linked ticket; may commit (through the inbound use
    cases). A change that no longer applies is marked skipped with its reason."""
    link = TwowayRepository(uow.session).provider_ticket(provider.id, item.ticket_ref)
    try:
        if link is None or not link.linked:
            raise Skipped(f"ticket {item.ticket_ref} is not linked to a task")
        if link.task_id is None:  # replayable once its opening is applied
            raise Conflict(f"ticket {item.ticket_ref} has not been opened here (its opening "
                           f"failed: see the error report)")
        item.task_id = link.task_id
        task = uow.repo.task(link.task_id)
        if task.status == "closed" and not item.payload.get("closed"):
            raise Skipped(f"task {task.id} is closed")
        if item.kind == "note":
            link.last_note_id = max(link.last_note_id or 0, int(item.payload.get("note_id") or 0))
            text = fit(item.payload.get("text") or "")
            if not text:
                raise Skipped("the note has no text")
            inbound.update_external(uow, task.id, text, source=_source(provider, item))
        elif item.kind == "status":
            _status(uow, provider, item, link, task)
        else:
            raise Skipped(f"unknown change {item.kind!r}")
    except Skipped as reason:
        item.status, item.error = "skipped", str(reason)
        uow.commit()
