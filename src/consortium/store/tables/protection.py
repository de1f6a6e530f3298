"""Data protection: withdrawals of dataset versions, the model versions they mark through lineage,
and retention periods.

A withdrawal row keeps what the record needs once the version itself is gone (its number,
checksum, size and rows, who withdrew it, why, and what followed); a mark says that a model
version derives from withdrawn data and what its deployments do (``stop`` or ``warn``). Both
outlive the dataset (no foreign key to it), as the audit does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class DatasetWithdrawal(Base):
    __tablename__ = "dataset_withdrawals"
    __table_args__ = (Index("ix_dataset_withdrawals_org_created", "org_id", "created_at", "id"),
                      Index("ix_dataset_withdrawals_dataset", "dataset_id"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(String(32))
    dataset: Mapped[str] = mapped_column(String(200))  # org/name when withdrawn
    version: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(71), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    mode: Mapped[str] = mapped_column(String(8))  # stop | warn: what deployments of derived models do
    reason: Mapped[str] = mapped_column(Text, default="")
    # what followed: {"grants_ended": [...], "models": [...], "deployments": [...]}
    effects: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WithdrawnModelVersion(Base):
    """A model version derived (directly or through other models) from a withdrawn dataset version."""

    __tablename__ = "withdrawn_model_versions"
    version_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    withdrawal_id: Mapped[str] = mapped_column(ForeignKey("dataset_withdrawals.id", ondelete="CASCADE"),
                                               primary_key=True)
    model_id: Mapped[str] = mapped_column(String(32))
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    mode: Mapped[str] = mapped_column(String(8))  # stop | warn
    via: Mapped[str] = mapped_column(String(200), default="")  # how lineage reached it: job id or parent version
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetentionRule(Base):
    """How many days an organization keeps something: each version of one dataset after its upload
    (``dataset_versions``, ``target_id`` the dataset) or its jobs' logs after they end (``job_logs``,
    ``target_id`` empty). Prediction logs keep their deployment's ``retention_days``."""

    __tablename__ = "retention_rules"
    __table_args__ = (UniqueConstraint("org_id", "kind", "target_id", name="uq_retention_rules_org_kind_target"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    target_id: Mapped[str] = mapped_column(String(32), default="")
    days: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
