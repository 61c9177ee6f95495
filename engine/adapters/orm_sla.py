"""Tables of provider SLAs: the targets per provider (and priority), and the breaches found."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.adapters.orm import Base, utcnow


class SlaTarget(Base):
    """How long a provider may take to acknowledge or to resolve; `priority` "" is the default
    for priorities without a target of their own."""

    __tablename__ = "sla_targets"
    __table_args__ = (UniqueConstraint("provider_id", "metric", "priority",
                                       name="uq_sla_target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"),
                                             index=True)
    metric: Mapped[str] = mapped_column(String(16))  # acknowledge | resolve
    priority: Mapped[str] = mapped_column(String(16), default="")
    minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SlaBreach(Base):
    """A target a provider missed on a task: found once by the worker's SLA job, never again
    (the unique key holds across restarts and workers). Append-only."""

    __tablename__ = "sla_breaches"
    __table_args__ = (UniqueConstraint("task_id", "provider_id", "metric",
                                       name="uq_sla_breach_once"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"),
                                             index=True)
    metric: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))
    target_minutes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    overdue_seconds: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
