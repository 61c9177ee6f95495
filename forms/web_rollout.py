"""Rolling out a new process version from its model page: a dry-run against a group's
history (the report), and the migration of waiting instances (a preview, then migrate)."""

from __future__ import annotations

from flask import flash, render_template, request
from marshmallow import EXCLUDE, Schema, fields, validate

from engine.domain.events import ALL_BINDINGS
from engine.exceptions import BpmnInvalid
from engine.services import dry_run, migration, queries
from engine.services.user_tasks import model_detail
from forms.web_common import actor, core, parse, roles
from forms.web_errors import new_blueprint

bp = new_blueprint("web_rollout", __name__)


class DryRunForm(Schema):
    class Meta:
        unknown = EXCLUDE

    group = fields.String(required=True, validate=validate.Length(min=1, max=120))
    tasks = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))
    event = fields.String(load_default=None, validate=validate.OneOf(ALL_BINDINGS))


def _integrated_groups() -> list[dict]:
    return [g for g in core().run(queries.list_groups) if g["integrated"]]


@bp.get("/process-models/<int:model_id>/dry-run")
@roles("designer", "integration_manager")
def dry_run_page(model_id: int):
    return render_template("rollout/dry_run.html", model=core().run(model_detail, model_id),
                           groups=_integrated_groups(), events=ALL_BINDINGS, report=None,
                           errors=[], chosen={})


@bp.post("/process-models/<int:model_id>/dry-run")
@roles("designer", "integration_manager")
def run_dry_run(model_id: int):
    data = parse(DryRunForm)
    model = core().run(model_detail, model_id)
    try:
        report, errors = dry_run.run_model(core(), model_id, data["group"], data["tasks"],
                                           data["event"]), []
    except BpmnInvalid as exc:
        report, errors = None, exc.errors
    return render_template("rollout/dry_run.html", model=model, groups=_integrated_groups(),
                           events=ALL_BINDINGS, report=report, errors=errors, chosen=data)


@bp.get("/process-models/<int:model_id>/migration")
@roles("designer", "integration_manager")
def migration_page(model_id: int):
    group = request.args.get("group") or None
    return render_template("rollout/migration.html", model=core().run(model_detail, model_id),
                           groups=core().run(queries.list_groups), group=group,
                           preview=core().run(migration.preview, model_id, group), result=None)


@bp.post("/process-models/<int:model_id>/migration")
@roles("designer")
def migrate(model_id: int):
    group = request.form.get("group") or None
    result = core().run(migration.migrate, model_id, group, None, actor())
    flash(f"{len(result['migrated'])} instance(s) moved to version {result['version']}; "
          f"{len(result['skipped'])} skipped.", "ok")
    return render_template("rollout/migration.html", model=core().run(model_detail, model_id),
                           groups=core().run(queries.list_groups), group=group,
                           preview=core().run(migration.preview, model_id, group), result=result)
