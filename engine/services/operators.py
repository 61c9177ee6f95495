"""Service-task operators: what an uploaded process may ask the engine to do.

Operators never talk to the outside world directly: provider calls become an exchange plus an
outbox row in the same transaction as the process state, delivered later by the worker.
"""

from __future__ import annotations

from engine.adapters import orm
from engine.adapters.providers import OutboundRequest, ProviderInfo
from engine.domain.events import Direction, Event, ExchangeStatus, RequestType
from engine.exceptions import DeliveryError, InvalidInput
from engine.services.views import customer_name

OPERATORS = (
    "provider.submit_request",
    "provider.send_update",
    "provider.send_closure",
    "provider.reject_resolution",
    "mail.send",
    "task.add_note",
    "task.set_field",
)
SETTABLE_FIELDS = {"title", "description", "priority", "external_reference"}
UNRENDERED = "unrendered"  # payload of an exchange that could not be rendered yet


def provider_info(provider: orm.Provider, settings: dict | None = None) -> ProviderInfo:
    return ProviderInfo(name=provider.name, channel=provider.channel,
                        endpoint_url=provider.endpoint_url, email=provider.email,
                        tag_labels=dict(provider.tag_labels or {}), id=provider.id,
                        settings=settings or {})


def enqueue_outbound(uow, task: orm.Task, provider: orm.Provider, request_type: str,
                     text: str) -> int:
    """Records an Out exchange and its outbox row; the worker delivers it after commit.

    A request that cannot be rendered yet (e.g. the provider has no address) is recorded as
    failed with the reason and can be replayed once the provider is fixed. Returns its id.
    """
    values = dict(task_id=task.id, provider_id=provider.id, request_type=request_type,
                  direction=str(Direction.OUT), channel=provider.channel, attempts=0)
    try:
        message = render_request(uow, task, provider, request_type, text)
    except DeliveryError as exc:
        return uow.repo.insert_exchange(**values, status=str(ExchangeStatus.FAILED),
                                        error=exc.message, payload={UNRENDERED: {"text": text}})
    exchange_id = uow.repo.insert_exchange(**values, status=str(ExchangeStatus.PENDING),
                                           payload=message)
    _queue(uow, exchange_id, provider.channel, message)
    return exchange_id


def render_request(uow, task: orm.Task, provider: orm.Provider, request_type: str,
                   text: str) -> dict:
    """The message the provider's channel would send for this request, with current settings."""
    channel = uow.context.channels.get(provider.channel)
    request = OutboundRequest(request_type=request_type, task=task_variable(task),
                              ticket=ticket_variable(task.ticket), text=text)
    # a channel's own settings for this task (the composition root knows which channels
    # have any): e.g. ConnectWise's board and priority for the task's customer
    resolve = uow.context.channel_settings.get(provider.channel)
    settings = resolve(uow, provider, task) if resolve is not None else None
    return channel.render(provider_info(provider, settings), request)


def queue_delivery(uow, exchange: orm.Exchange, task: orm.Task, provider: orm.Provider) -> None:
    """Renders a not-yet-rendered exchange with the provider's current settings and queues it."""
    text = exchange.payload.get(UNRENDERED, {}).get("text", "")
    message = render_request(uow, task, provider, exchange.request_type, text)
    exchange.payload, exchange.channel = message, provider.channel
    _queue(uow, exchange.id, provider.channel, message)


def _queue(uow, exchange_id: int | None, channel: str, message: dict) -> None:
    core = uow.context
    uow.repo.insert_outbox(exchange_id=exchange_id, channel=channel, message=message,
                           next_attempt_at=core.clock.now())
    uow.after_commit.append(core.work_available.set)


def task_variable(task: orm.Task) -> dict:
    return {"id": task.id, "ticket_id": task.ticket_id, "title": task.title,
            "description": task.description or "", "group": task.group.name if task.group else None,
            "status": task.status, "external_reference": task.external_reference,
            "solution": task.solution, "priority": task.priority,
            "customer": customer_name(task.ticket)}


def ticket_variable(ticket: orm.Ticket) -> dict:
    return {"id": ticket.id, "title": ticket.title, "customer": customer_name(ticket)}


class OperatorContext:
    """Binds operators to one task and event while a process instance runs."""

    def __init__(self, uow, task: orm.Task, event: Event) -> None:
        self.uow = uow
        self.task = task
        self.event = event

    def __call__(self, operator: str, params: dict) -> dict:
        method = getattr(self, "op_" + operator.replace(".", "_"), None)
        if method is None or operator not in OPERATORS:
            raise InvalidInput(f"unknown service operator {operator!r}")
        return method(**params)

    def _provider(self) -> orm.Provider:
        group = self.task.group
        if group is None or group.provider is None:
            raise InvalidInput(f"task {self.task.id} is not held by a group with a provider")
        return group.provider

    def _send(self, request_type: str, text: str) -> dict:
        exchange_id = enqueue_outbound(self.uow, self.task, self._provider(), request_type, text)
        return {"exchange_id": exchange_id, "request_type": request_type}

    def op_provider_submit_request(self, text: str = "", **_ignored) -> dict:
        return self._send(str(RequestType.SUBMIT_REQUEST), text or self.event.message)

    def op_provider_send_update(self, text: str = "", **_ignored) -> dict:
        # The update process also serves "decline solution": keep the event's request type.
        kind = self.event.kind.request_type
        request_type = kind if kind == RequestType.RESOLUTION_REJECTION else RequestType.UPDATE
        return self._send(str(request_type), text or self.event.message)

    def op_provider_send_closure(self, text: str = "", **_ignored) -> dict:
        return self._send(str(RequestType.CLOSED), text or self.task.solution or "")

    def op_provider_reject_resolution(self, text: str = "", **_ignored) -> dict:
        return self._send(str(RequestType.RESOLUTION_REJECTION), text or self.event.message)

    def op_task_add_note(self, text: str = "", **_ignored) -> dict:
        if not str(text).strip():
            raise InvalidInput("task.add_note needs a non-empty 'text' parameter")
        self.uow.repo.insert_note(task_id=self.task.id, kind="process", text=str(text)[:10000],
                                  author="process")
        return {"note": str(text)[:200]}

    def op_task_set_field(self, field: str = "", value: object = None, **_ignored) -> dict:
        if field not in SETTABLE_FIELDS:
            raise InvalidInput(f"task.set_field: field must be one of {sorted(SETTABLE_FIELDS)}")
        setattr(self.task, field, None if value is None else str(value)[:500])
        return {"field": field, "value": value}

    def op_mail_send(self, to: str = "", subject: str = "", body: str = "", **_ignored) -> dict:
        if "@" not in str(to):
            raise InvalidInput("mail.send needs a 'to' address")
        core = self.uow.context
        if str(to).lower().endswith("@" + core.settings.mail_domain):
            raise InvalidInput("mail.send refuses to write to our own addresses (mail loop)")
        message = {"to": str(to), "from": core.settings.own_address, "subject": str(subject),
                   "body": str(body) + "\n", "message_id": f"<mail-{self.task.id}-"
                   f"{core.clock.now().timestamp()}@{core.settings.mail_domain}>",
                   "task_id": self.task.id}
        _queue(self.uow, None, "email", message)
        return {"to": str(to)}
