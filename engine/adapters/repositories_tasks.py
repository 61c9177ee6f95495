"""The hot paths' task, for the Repository (a mixin): a task with its ticket, customer, group,
provider and bindings (each with its process's latest model id) read as plain rows in one
Core statement, and written back with one Core UPDATE with the version check when the unit
of work commits (docs/design/write-path.md §2). Statements are built once per process.
"""

from __future__ import annotations

from sqlalchemy import bindparam, event, func, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from engine.adapters import orm
from engine.adapters.task_rows import (
    TASK_COLUMNS,
    BindingRow,
    CustomerRow,
    GroupRow,
    ProviderRow,
    TaskRow,
    TicketRow,
)
from engine.exceptions import TaskNotFound

_TASK, _TICKET = orm.Task.__table__, orm.Ticket.__table__
_CUSTOMER, _GROUP = orm.Customer.__table__, orm.Group.__table__
_PROVIDER, _BINDING = orm.Provider.__table__, orm.ProcessBinding.__table__
_MODEL, _EXCHANGE = orm.ProcessModel.__table__, orm.Exchange.__table__

_PROVIDER_COLUMNS = tuple(c.name for c in _PROVIDER.c if c.name != "created_at")
_LATEST_MODEL = (select(_MODEL.c.id).where(_MODEL.c.process_id == _BINDING.c.process_id)
                 .order_by(_MODEL.c.version.desc()).limit(1).correlate(_BINDING)
                 .scalar_subquery())
_GROUP_COLUMNS = (
    _TICKET.c.id.label("k_id"), _TICKET.c.title.label("k_title"),
    _TICKET.c.description.label("k_description"), _TICKET.c.customer_id.label("k_customer_id"),
    _CUSTOMER.c.name.label("c_name"),
    _GROUP.c.id.label("g_id"), _GROUP.c.name.label("g_name"),
    _GROUP.c.integrated.label("g_integrated"), _GROUP.c.provider_id.label("g_provider_id"),
    *(_PROVIDER.c[name].label("p_" + name) for name in _PROVIDER_COLUMNS),
    _BINDING.c.event.label("b_event"), _BINDING.c.process_id.label("b_process_id"),
    _LATEST_MODEL.label("b_latest_model_id"))
# the answer the group's provider was given for this request id (an event repeated)
_EARLIER = (select(_EXCHANGE.c.result)
            .where(_EXCHANGE.c.provider_id == _GROUP.c.provider_id,
                   _EXCHANGE.c.idempotency_key == bindparam("key"))
            .correlate(_GROUP).scalar_subquery().label("earlier"))
_TASK_JOINS = (_TASK.join(_TICKET, _TICKET.c.id == _TASK.c.ticket_id)
               .outerjoin(_CUSTOMER, _CUSTOMER.c.id == _TICKET.c.customer_id)
               .outerjoin(_GROUP, _GROUP.c.id == _TASK.c.group_id)
               .outerjoin(_PROVIDER, _PROVIDER.c.id == _GROUP.c.provider_id)
               .outerjoin(_BINDING, _BINDING.c.group_id == _GROUP.c.id))
_TASK_GRAPH = (select(*_TASK.c, *_GROUP_COLUMNS, _EARLIER).select_from(_TASK_JOINS)
               .where(_TASK.c.id == bindparam("id")))
# PostgreSQL: the row lock, its wait bounded in the same round trip. The bound is set (SET
# LOCAL, by set_config) while the rows are joined, before the lock is taken above the join.
_BOUND = select(func.set_config("lock_timeout", bindparam("lock_ms"), True).label("ms")).cte(
    "lock_bound")
_TASK_GRAPH_LOCKED = (select(*_TASK.c, *_GROUP_COLUMNS, _EARLIER)
                      .select_from(_TASK_JOINS.join(_BOUND, true()))
                      .where(_TASK.c.id == bindparam("id")).with_for_update(of=_TASK))
_TICKET_AND_GROUP = (
    select(*_GROUP_COLUMNS)
    .select_from(_TICKET.outerjoin(_CUSTOMER, _CUSTOMER.c.id == _TICKET.c.customer_id)
                 .join(_GROUP, true())
                 .outerjoin(_PROVIDER, _PROVIDER.c.id == _GROUP.c.provider_id)
                 .outerjoin(_BINDING, _BINDING.c.group_id == _GROUP.c.id))
    .where(_TICKET.c.id == bindparam("id"), _GROUP.c.name == bindparam("name")))
_UPDATE_TASK = (update(_TASK)  # the SET clause takes the columns named by the parameters
                .where(_TASK.c.id == bindparam("task_id"), _TASK.c.version == bindparam("seen"))
                .values(version=bindparam("seen") + 1))


def _ticket(row) -> TicketRow:
    customer = (CustomerRow(id=row.k_customer_id, name=row.c_name)
                if row.k_customer_id is not None else None)
    return TicketRow(id=row.k_id, title=row.k_title, description=row.k_description,
                     customer_id=row.k_customer_id, customer=customer)


def _group(rows) -> GroupRow | None:
    first = rows[0]
    if first.g_id is None:
        return None
    provider = (ProviderRow(**{name: getattr(first, "p_" + name) for name in _PROVIDER_COLUMNS})
                if first.p_id is not None else None)
    bindings = [BindingRow(group_id=first.g_id, event=row.b_event, process_id=row.b_process_id,
                           latest_model_id=row.b_latest_model_id)
                for row in rows if row.b_event is not None]
    return GroupRow(id=first.g_id, name=first.g_name, integrated=first.g_integrated,
                    provider_id=first.g_provider_id, provider=provider, bindings=bindings)


class TaskRowRepository:
    session: object

    def task_row_for_update(self, task_id: int, request_key: str | None = None) -> TaskRow:
        """The task as plain rows (ticket, customer, group, provider, bindings), locked like
        `task_for_update`; with the answer its group's provider got for `request_key`."""
        self._flush_orm_task(task_id)
        params = {"id": task_id, "key": request_key}
        if self.session.bind.dialect.name == "postgresql":
            params["lock_ms"] = str(max(1, int(self.session.info.get("lock_timeout", 5.0)
                                               * 1000)))
            rows = self._execute(_TASK_GRAPH_LOCKED, params).all()
            self.session.info["lock_timeout_of"] = self.session.get_transaction()
        else:
            rows = self._execute(_TASK_GRAPH, params).all()
        if not rows:
            raise TaskNotFound(f"task {task_id} not found")
        first = rows[0]
        task = TaskRow({name: getattr(first, name) for name in TASK_COLUMNS}, _ticket(first),
                       _group(rows), first.earlier)
        self._track(task)
        return task

    def ticket_and_group(self, ticket_id: int, group_name: str
                              ) -> tuple[TicketRow, GroupRow | None]:
        """The ticket and the group (with provider and bindings) as plain rows, in one
        statement; NotFound for a missing ticket, None for a missing group."""
        rows = self._execute(_TICKET_AND_GROUP, {"id": ticket_id, "name": group_name}).all()
        if rows:
            return _ticket(rows[0]), _group(rows)
        ticket = self.ticket(ticket_id)  # one of them is missing (NotFound if the ticket)
        customer = (CustomerRow(id=ticket.customer.id, name=ticket.customer.name)
                    if ticket.customer is not None else None)
        return TicketRow(id=ticket.id, title=ticket.title, description=ticket.description,
                         customer_id=ticket.customer_id, customer=customer), None

    def insert_task_row(self, ticket: TicketRow, group: GroupRow | None, **values) -> TaskRow:
        """Adds a task with one INSERT -> it as a plain row (later changes are written when
        the unit of work commits, with the version check)."""
        now = orm.utcnow()
        columns = {"ticket_id": ticket.id, "group_id": group.id if group else None,
                   "status": "open", "external_reference": None, "solution": None,
                   "solution_pending": False, "description": "", "priority": "normal",
                   "version": 1, "created_at": now, "updated_at": now, **values}
        columns["id"] = self._insert(orm.Task, columns)
        task = TaskRow(columns, ticket, group)
        self._track(task)
        return task

    def write_task_rows(self) -> None:
        """Writes what changed on the task rows of this unit of work (when its use case
        commits, or flushes in a shared transaction): one UPDATE each, if nobody changed the
        task since it was read (else StaleDataError: the use case is retried, as for the
        ORM's version check). Rows read in a transaction or savepoint that was rolled back
        since are forgotten, with what was assigned to them."""
        tracked = self.session.info.pop("task_rows", None)
        for _transaction, task in tracked or ():
            changes = task.changes()
            if not changes:
                continue
            changes.setdefault("updated_at", orm.utcnow())
            result = self._execute(_UPDATE_TASK,
                                   {"task_id": task.id, "seen": task.version, **changes})
            if result.rowcount != 1:
                raise StaleDataError(f"task {task.id} was changed concurrently")
            task.written(task.version + 1, changes["updated_at"])
            self._sync_orm_task(task, changes)

    def _track(self, task: TaskRow) -> None:
        session = self.session
        innermost = session.get_nested_transaction() or session.get_transaction()
        session.info.setdefault("task_rows", []).append((innermost, task))

    def _orm_task(self, task_id: int):
        if not self.session.identity_map:
            return None
        return self.session.identity_map.get(identity_key(orm.Task, task_id))

    def _flush_orm_task(self, task_id: int) -> None:
        """A change to the same task made through the ORM in this unit of work is written
        before the task is read as a row."""
        loaded = self._orm_task(task_id)
        if loaded is not None and loaded in self.session.dirty:
            self.session.flush()

    def _sync_orm_task(self, task: TaskRow, changes: dict) -> None:
        """The ORM's copy of the task, if this unit of work loaded one, sees the write (and
        its version stays right for a later ORM flush)."""
        loaded = self._orm_task(task.id)
        if loaded is None:
            return
        for name, value in {**changes, "version": task.version}.items():
            set_committed_value(loaded, name, value)


def _rolled_back_within(transaction, rolled_back) -> bool:
    while transaction is not None:
        if transaction is rolled_back:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back_rows(session, previous_transaction) -> None:
    """A savepoint (or transaction) rolled back takes the task rows read in it along, like
    the ORM expires what it loaded: what the failed use case assigned is never written."""
    tracked = session.info.get("task_rows")
    if tracked:
        session.info["task_rows"] = [
            (transaction, task) for transaction, task in tracked
            if not _rolled_back_within(transaction, previous_transaction)]
