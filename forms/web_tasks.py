"""The agent's pages: inbox, new ticket, task page and its actions, user-task forms."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from engine.services import processes, queries, sla, tasks
from engine.services.task_links import provider_choices
from engine.services.tasks import open_ticket
from engine.services.user_tasks import task_page_with_forms, user_task_form
from forms import web_schemas as schemas
from forms.web_common import actor, core, parse, roles, visible_groups
from forms.web_errors import new_blueprint

bp = new_blueprint("web_tasks", __name__)
READERS = ("agent", "integration_manager")


def _my_groups() -> list[dict]:
    allowed = visible_groups()
    return [g for g in core().run(queries.list_groups) if allowed is None or g["id"] in allowed]


@bp.get("/tasks")
@roles(*READERS)
def inbox():
    filters = parse(schemas.TaskFilterIn, request.args)
    groups = _my_groups()
    chosen = {g["id"] for g in groups if g["name"] == filters["group"]} if filters["group"] \
        else visible_groups()
    status = None if filters["status"] == "all" else filters["status"]
    page = core().run(queries.list_tasks, chosen, status, filters["q"], filters["page"])
    ids = [t["id"] for t in page["items"]]
    badges = core().run(sla.breach_badges, ids)
    returned = core().run(queries.returned_tasks, ids)
    return render_template("tasks/inbox.html", page=page, groups=groups, filters=filters,
                           sla_badges=badges, returned=returned)


@bp.get("/tickets/new")
@roles("agent")
def new_ticket():
    return render_template("tasks/new_ticket.html", groups=core().run(queries.list_groups))


@bp.post("/tickets")
@roles("agent")
def create_ticket():
    data = parse(schemas.NewTicketIn)
    task = core().run(open_ticket, actor=actor(), **data)
    flash(f"Ticket {task['ticket_id']} opened; task {task['id']} is with {task['group']}.", "ok")
    return redirect(url_for("web_tasks.task_page", task_id=task["id"]))


@bp.get("/tasks/<int:task_id>")
@roles(*READERS)
def task_page(task_id: int):
    page = core().run(task_page_with_forms, task_id, visible_groups())
    page["provider_tickets"] = core().run(provider_choices, task_id)  # Create/Update ticket in…
    return render_template("tasks/task.html", **page, form_fields=schemas.form_fields)


def _task_action(task_id: int, use_case, schema, field: str, done: str):
    value = parse(schema)[field]
    core().run(queries.task_detail, task_id, visible_groups())  # 404 outside the agent's groups
    core().run(use_case, task_id, value, actor=actor())
    flash(done, "ok")
    return redirect(url_for("web_tasks.task_page", task_id=task_id))


@bp.post("/tasks/<int:task_id>/assign")
@roles("agent")
def assign(task_id: int):
    return _task_action(task_id, tasks.assign_task, schemas.AssignIn, "group",
                        "Task assigned.")


@bp.post("/tasks/<int:task_id>/updates")
@roles("agent")
def add_update(task_id: int):
    return _task_action(task_id, tasks.add_update, schemas.UpdateIn, "text", "Update added.")


@bp.post("/tasks/<int:task_id>/close")
@roles("agent")
def close(task_id: int):
    return _task_action(task_id, tasks.close_task, schemas.CloseIn, "solution",
                        "Task closed.")


@bp.post("/tasks/<int:task_id>/decline-solution")
@roles("agent")
def decline_solution(task_id: int):
    return _task_action(task_id, tasks.decline_solution, schemas.DeclineIn, "reason",
                        "Solution declined; the provider has been told.")


@bp.post("/process-instances/<int:instance_id>/user-tasks/<element_id>")
@roles("agent")
def complete_user_task(instance_id: int, element_id: str):
    form = core().run(user_task_form, instance_id, element_id, visible_groups())
    data = parse(schemas.user_task_schema(form["definition"]))
    core().run(processes.complete_user_task, instance_id, element_id, data, actor())
    flash(f"{form['step'].get('name') or element_id}: done.", "ok")
    return redirect(url_for("web_tasks.task_page", task_id=form["task_id"]))
