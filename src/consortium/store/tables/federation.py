"""Federation: registered nodes, per-job approvals, privacy budgets and the epsilon ledger.

A node row says what an organization's ``consortium node`` advertises (dataset names, schemas
and statistics, never rows), when it was last seen and whether it accepts federated jobs
automatically or only after its organization approves each job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class FederationNode(Base):
    __tablename__ = "federation_nodes"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_federation_nodes_org_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    approve: Mapped[str] = mapped_column(String(16), default="auto")  # auto | manual
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # schema/stats only
    agent: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # version, host info
    registered_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NodeApproval(Base):
    """One organization's decision on one federated job (``pending`` until it decides)."""

    __tablename__ = "federation_approvals"
    __table_args__ = (UniqueConstraint("org_id", "job_id", name="uq_federation_approvals_org_job"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str | None] = mapped_column(ForeignKey("federation_nodes.id", ondelete="SET NULL"),
                                                nullable=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | rejected
    # set by the hub when the org's own node should join the run: {"superlink", "dataset", "state"}
    assignment: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PrivacyBudget(Base):
    """The most epsilon (at ``delta``) federated jobs may spend on a dataset, set by its owner."""

    __tablename__ = "privacy_budgets"
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrivacySpend(Base):
    """Ledger: epsilon one job spent on one dataset (written when the job's model is registered)."""

    __tablename__ = "privacy_ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
