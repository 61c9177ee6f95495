"""The integration manager's SLA page: charts of each provider's weekly figures, the same
figures as a table and as CSV, the provider's targets (a form), and its recent breaches."""

from __future__ import annotations

import re
from pathlib import Path

from flask import flash, redirect, render_template, request, url_for

from engine.domain.sla import METRICS, PRIORITIES
from engine.exceptions import InvalidInput
from engine.services import queries, sla
from forms.csv_export import csv_response
from forms.web_common import core, roles
from forms.web_errors import new_blueprint

bp = new_blueprint("web_sla", __name__)
CHARTS = Path(__file__).parent / "static" / "vendor" / "chart.js" / "chart.umd.min.js"
SCOPES = ("", *PRIORITIES)  # "" = every priority without a target of its own
_INDEX = re.compile(r"^targets\[(\d+)\]\.?(\w*)$")


def charts_installed() -> bool:
    return CHARTS.is_file()


def _weeks() -> int:
    raw = request.args.get("weeks", "12")
    if not raw.isdigit() or not 1 <= int(raw) <= sla.MAX_WEEKS:
        raise InvalidInput(f"weeks must be a whole number from 1 to {sla.MAX_WEEKS}",
                           field="weeks")
    return int(raw)


def _hours(seconds) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def chart_data(rows: list[dict]) -> dict:
    """What static/sla.js draws: per metric, weekly counts, breaches and p50/p90 in hours."""
    weeks = sorted({r["week"] for r in rows})
    data = {"weeks": weeks}
    for metric in METRICS:
        mine = {r["week"]: r for r in rows if r["metric"] == metric}
        target = next((r["target_minutes"] for r in mine.values() if r["target_minutes"]), None)
        data[metric] = {
            "count": [mine[w]["count"] for w in weeks],
            "breaches": [mine[w]["breaches"] for w in weeks],
            "p50": [_hours(mine[w]["p50_seconds"]) for w in weeks],
            "p90": [_hours(mine[w]["p90_seconds"]) for w in weeks],
            "target": round(target / 60, 2) if target else None}
    return data


@bp.get("/sla")
@roles("integration_manager")
def sla_page():
    weeks = _weeks()
    providers = core().run(queries.list_providers)
    figures = core().run(sla.figures, weeks)
    listed = [p["name"] for p in providers]
    chosen = request.args.get("provider") or next(
        (r["provider"] for r in figures["rows"] if r["count"]), listed[0] if listed else None)
    provider = next((p for p in providers if p["name"] == chosen), None)
    rows = [r for r in figures["rows"] if r["provider"] == chosen]
    targets = core().run(sla.get_targets, provider["id"])["targets"] if provider else []
    return render_template(
        "sla/page.html", providers=listed, provider=provider, weeks=weeks, rows=rows,
        chart=chart_data(rows), charts=charts_installed(), metrics=METRICS, scopes=SCOPES,
        targets={(t["metric"], t["priority"] or ""): t["minutes"] for t in targets},
        breaches=core().run(sla.recent_breaches, chosen, 20) if provider else [],
        figures=figures)


@bp.get("/sla/figures.csv")
@roles("integration_manager")
def figures_csv():
    result = core().run(sla.figures, _weeks(), request.args.get("provider") or None)
    return csv_response(result["rows"], sla.FIGURE_COLUMNS, "sla-figures.csv")


def _cells(form) -> tuple[list[dict], list[str]]:
    """The target grid's filled cells as targets, and a label for each (for error messages)."""
    targets, labels = [], []
    for metric in METRICS:
        for scope in SCOPES:
            raw = form.get(f"{metric}_{scope or 'any'}", "").strip()
            if not raw:
                continue
            label = f"{metric} ({scope or 'any priority'})"
            if not raw.lstrip("-").isdigit():
                raise InvalidInput(f"{label}: enter whole minutes, not {raw!r}")
            targets.append({"metric": metric, "priority": scope or None, "minutes": int(raw)})
            labels.append(label)
    return targets, labels


@bp.post("/sla/targets/<int:provider_id>")
@roles("integration_manager")
def save_targets(provider_id: int):
    targets, labels = _cells(request.form)
    try:
        result = core().run(sla.set_targets, provider_id, targets)
    except InvalidInput as exc:
        match = _INDEX.match(exc.field or "")
        if match is None:
            raise
        text = exc.message.split(" ", 1)[1] if " " in exc.message else exc.message
        raise InvalidInput(f"{labels[int(match.group(1))]}: {text}", field=exc.field) from None
    flash(f"SLA targets of {result['provider']} saved ({len(result['targets'])}).", "ok")
    return redirect(url_for("web_sla.sla_page", provider=result["provider"]))
