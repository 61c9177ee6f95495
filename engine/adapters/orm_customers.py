"""Tables of customers (accounts), their assets, and the same things on a provider's side:
sites (companies) and devices (configurations), each linked to at most one of ours."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.adapters.orm import Base, utcnow

OWN_ONLY = text("own")  # the partial index's predicate: rows of our own business


class Customer(Base):
    """An account that owns tickets and assets. Exactly one is our own business (`own`): the
    partial unique index lets no second row claim it."""

    __tablename__ = "customers"
    __table_args__ = (Index("uq_customers_own", "own", unique=True, sqlite_where=OWN_ONLY,
                            postgresql_where=OWN_ONLY),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    own: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Asset(Base):
    """A device of a customer (router, server, line…)."""

    __tablename__ = "assets"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str | None] = mapped_column(String(200))
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderSite(Base):
    """A company as a provider knows it, downloaded from its side; `customer_id` is the link."""

    __tablename__ = "provider_sites"
    __table_args__ = (UniqueConstraint("provider_id", "external_id", name="uq_provider_site"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    customer: Mapped[Customer | None] = relationship(lazy="joined")


class ProviderDevice(Base):
    """A configuration (device) as a provider knows it; `asset_id` is the link."""

    __tablename__ = "provider_devices"
    __table_args__ = (UniqueConstraint("provider_id", "external_id", name="uq_provider_device"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    serial: Mapped[str | None] = mapped_column(String(200))
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(100))
    site_external_id: Mapped[str | None] = mapped_column(String(100))
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    asset: Mapped[Asset | None] = relationship(lazy="joined")
