"""Tables of the ConnectWise (PSA) channel: a provider's connection (private key sealed),
its organisation-wide settings, value mappings, the look-ups fetched from ConnectWise, and
the agreement-sync reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from engine.adapters.orm import Base, Provider, utcnow


class PsaConnection(Base):
    """How to reach a provider's ConnectWise. `private_key_sealed` is Fernet-encrypted with a
    key derived from LIAISON_SECRET_KEY (engine.domain.sealed); the plain key is never stored."""

    __tablename__ = "psa_connections"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    company_id: Mapped[str] = mapped_column(String(120))
    public_key: Mapped[str] = mapped_column(String(200))
    private_key_sealed: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    provider: Mapped[Provider] = relationship(
        backref=backref("psa_connection", uselist=False, lazy="select",
                        cascade="all, delete-orphan"))


class PsaSettings(Base):
    """Organisation-wide defaults of a provider (board, service_type, priority, contact,
    auto_close, closed_status, company), names as ConnectWise knows them."""

    __tablename__ = "psa_settings"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)  # {"names": {…}, "refs": {…}}
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PsaMapping(Base):
    """One pair of a mapping: our value (a task priority, an asset type) -> theirs."""

    __tablename__ = "psa_mappings"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # priority | service
    ours: Mapped[str] = mapped_column(String(120), primary_key=True)
    theirs: Mapped[str] = mapped_column(String(200))


class PsaLookup(Base):
    """A list fetched from ConnectWise (boards, a board's statuses or types, priorities,
    contacts, companies, products), cached for drop-downs and checks; refreshed hourly."""

    __tablename__ = "psa_lookups"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(40), primary_key=True, default="")
    items: Mapped[list] = mapped_column(JSON, default=list)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class PsaSyncRun(Base):
    """One agreement-quantity sync of a provider: what changed, what did not, what failed."""

    __tablename__ = "psa_sync_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # nightly | manual
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    details: Mapped[list] = mapped_column(JSON, default=list)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)


class PsaCustomerSettings(Base):
    """One customer's overrides of a provider's settings (plus `company`, `agreement`), and
    whether that customer's tasks go to the provider at all (`enabled`)."""

    __tablename__ = "psa_customer_settings"
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)  # {"names": {…}, "refs": {…}}
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
