"""The audit log: an append-only hash chain of events, and its head (the serialization point).

The head also carries the chain's seal: events from ``keyed_from`` on are keyed with the audit
MAC key; ``seal`` is a MAC over the events before (written before the chain was keyed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime


class EventFields:
    """An event's recorded columns, shared by the chain and the outbox."""

    time: Mapped[datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_org_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(80))
    resource_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resource_org_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON


class AuditEvent(EventFields, Base):
    __tablename__ = "audit_events"
    # the lists' keys: an organization's or a project's events newest first (migration 0003)
    __table_args__ = (Index("ix_audit_events_actor_seq", "actor_org_id", "seq"),
                      Index("ix_audit_events_resource_seq", "resource_org_id", "seq"),
                      Index("ix_audit_events_project_seq", "project_id", "seq"))
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_hash: Mapped[str] = mapped_column(String(64))
    keyed_from: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), nullable=True)
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    seal: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditOutbox(EventFields, Base):
    """Events of committed changes not yet on the chain: an API change writes its events here in
    its own transaction (no lock on the head), and the audit group commit moves them onto the
    chain in its next batch (``governance.audit``). Empty but for a few milliseconds, or after a
    crash until the next batch."""

    __tablename__ = "audit_outbox"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
