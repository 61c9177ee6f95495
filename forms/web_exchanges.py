"""The integration manager's pages: every exchange, filtered; incidents with replay."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from engine.domain.events import Direction, ExchangeStatus, RequestType
from engine.services import exchange_log, outbox, queries
from forms import web_schemas as schemas
from forms.csv_export import csv_response
from forms.web_common import back_to, core, parse, roles, visible_groups
from forms.web_errors import new_blueprint

bp = new_blueprint("web_exchanges", __name__)
PAGE_SIZE = 50
INCIDENTS = 20


@bp.get("/exchanges")
@roles("integration_manager")
def exchanges():
    filters = parse(schemas.ExchangeFilterIn, request.args)
    page = filters.pop("page")
    provider = filters.pop("provider")
    rows = core().run(queries.list_exchanges, filters, provider, PAGE_SIZE + 1,
                      (page - 1) * PAGE_SIZE)
    incidents = core().run(queries.list_exchanges, {"status": "failed"}, None, INCIDENTS)
    total = core().run(exchange_log.count_exchanges, filters, provider)
    return render_template(
        "exchanges/list.html", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
        total=total, page_size=PAGE_SIZE,
        incidents=incidents, providers=core().run(queries.list_providers),
        request_types=[str(t) for t in RequestType], directions=[str(d) for d in Direction],
        statuses=[str(s) for s in ExchangeStatus], args=request.args)


@bp.get("/exchanges/export.csv")
@roles("integration_manager")
def export_csv():
    filters = parse(schemas.ExchangeFilterIn, request.args)
    filters.pop("page")
    provider = filters.pop("provider")
    return csv_response(exchange_log.export_rows(core(), filters, provider),
                        exchange_log.CSV_COLUMNS, "exchanges.csv")


@bp.get("/exchanges/<int:exchange_id>")
@roles("integration_manager", "agent")
def exchange_page(exchange_id: int):
    exchange = core().run(queries.exchange_detail, exchange_id, visible_groups())
    if exchange["task_id"] is None and visible_groups() is not None:
        abort(404)  # the global log (mail naming no task) is not an agent's to read
    return render_template("exchanges/detail.html", exchange=exchange)


@bp.post("/exchanges/<int:exchange_id>/replay")
@roles("integration_manager")
def replay(exchange_id: int):
    exchange = core().run(outbox.replay_exchange, exchange_id)
    flash(f"Exchange {exchange['id']} ({exchange['request_type']}) queued for delivery again.",
          "ok")
    return redirect(back_to(url_for("web_exchanges.exchanges")))
