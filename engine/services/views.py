"""Plain dictionaries for the edges (REST, SOAP, web): the shapes of CONTRACT §3."""

from __future__ import annotations

from engine.adapters import orm


def iso(value) -> str | None:
    return value.isoformat() if value else None


def customer_name(ticket: orm.Ticket | None) -> str | None:
    """A ticket's customer as every edge shows it: its name (None: our own business)."""
    return ticket.customer.name if ticket is not None and ticket.customer is not None else None


def task_view(task: orm.Task) -> dict:
    return {
        "id": task.id, "ticket_id": task.ticket_id, "title": task.title,
        "description": task.description, "group": task.group.name if task.group else None,
        "status": task.status, "external_reference": task.external_reference,
        "solution": task.solution, "solution_pending": task.solution_pending,
        "priority": task.priority, "customer": customer_name(task.ticket),
        "created_at": iso(task.created_at), "updated_at": iso(task.updated_at),
    }


def ticket_view(ticket: orm.Ticket) -> dict:
    return {"id": ticket.id, "title": ticket.title, "description": ticket.description,
            "customer": customer_name(ticket), "customer_id": ticket.customer_id,
            "created_at": iso(ticket.created_at)}


def exchange_view(exchange: orm.Exchange, with_payload: bool = False) -> dict:
    view = {
        "id": exchange.id, "task_id": exchange.task_id,
        "provider": exchange.provider.name if exchange.provider else None,
        "request_type": exchange.request_type, "direction": exchange.direction,
        "channel": exchange.channel, "status": exchange.status, "attempts": exchange.attempts,
        "error": exchange.error, "at": iso(exchange.created_at),
    }
    if with_payload:
        view["payload"] = exchange.payload
        view["result"] = exchange.result
    return view


def instance_view(instance: orm.ProcessInstance) -> dict:
    return {
        "id": instance.id, "task_id": instance.task_id, "process_id": instance.process_id,
        "model_id": instance.model_id, "event": instance.event, "status": instance.status,
        "waiting_for": [m for m in (instance.waiting_messages or "").split(",") if m],
        "current_steps": instance.current_steps or [],
        "next_timer_at": iso(instance.next_timer_at), "error": instance.error,
        "created_at": iso(instance.created_at), "updated_at": iso(instance.updated_at),
    }


def model_view(model: orm.ProcessModel) -> dict:
    return {"id": model.id, "process_id": model.process_id, "version": model.version,
            "name": model.name, "filename": model.filename, "uploaded_by": model.uploaded_by,
            "created_at": iso(model.created_at)}


def provider_view(provider: orm.Provider, public_url: str) -> dict:
    view = {"id": provider.id, "name": provider.name, "channel": provider.channel,
            "endpoint_url": provider.endpoint_url, "email": provider.email,
            "username": provider.username, "trust_sender": provider.trust_sender,
            "tag_labels": provider.tag_labels or {}, **inbound_keys(provider, public_url)}
    if provider.channel == "connectwise":
        view["connection"] = connection_view(provider)
    return view


def inbound_keys(provider: orm.Provider, public_url: str) -> dict:
    """CONTRACT §7: inbound is off until enabled; the callback URL carries an unguessable key."""
    row = provider.inbound
    url = (f"{public_url.rstrip('/')}/api/v1/psa-callbacks/{row.callback_key}"
           if row is not None and public_url else None)
    return {"inbound_enabled": bool(row and row.enabled),
            "inbound_group": row.group.name if row and row.group else None,
            "callback_url": url}


def connection_view(provider: orm.Provider) -> dict | None:
    """A ConnectWise connection without its private key (write-only: only whether it is set)."""
    row = provider.psa_connection
    if row is None:
        return None
    return {"url": row.url, "company_id": row.company_id, "public_key": row.public_key,
            "client_id": row.client_id, "has_private_key": bool(row.private_key_sealed)}


def group_view(group: orm.Group) -> dict:
    return {"id": group.id, "name": group.name, "integrated": group.integrated,
            "provider": group.provider.name if group.provider else None,
            "processes": {b.event: b.process_id for b in group.bindings}}
