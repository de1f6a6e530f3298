"""Monitoring tables: per-deployment settings, the sampled prediction log (encrypted), feedback,
per-minute latency histograms and the record of retraining triggers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class MonitoringConfig(Base):
    """Monitoring settings of one deployment (no row: the defaults; see ``consortium.monitoring.config``)."""

    __tablename__ = "monitoring_configs"
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PredictionRecord(Base):
    """One sampled prediction: request and response sealed with the deployment owner's data key.
    ``sampled`` false: a prediction too long for a self-describing id, kept (response only, no
    request) so that it can get feedback.

    Kept after undeploy until retention removes it (no FK to the deployment)."""

    __tablename__ = "prediction_log"
    __table_args__ = (Index("ix_prediction_log_dep_created_id", "deployment_id", "created_at", "id"),)  # 0502
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(32))
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    caller_org_id: Mapped[str] = mapped_column(String(32))
    version_id: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(8), default="predict")  # predict | v2
    rows: Mapped[int] = mapped_column(Integer, default=1)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # KeyService.encrypt_stream({"inputs", "outputs"})
    sampled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Feedback(Base):
    """The true label(s) a caller reported for one logged prediction, scored at once (labels are not kept)."""

    __tablename__ = "prediction_feedback"
    __table_args__ = (Index("ix_prediction_feedback_dep_created", "deployment_id", "created_at"),)
    prediction_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(32))
    caller_org_id: Mapped[str] = mapped_column(String(32))
    version_id: Mapped[str] = mapped_column(String(32))
    n: Mapped[int] = mapped_column(Integer)
    correct: Mapped[int] = mapped_column(Integer, default=0)  # classification
    sq_error: Mapped[float] = mapped_column(Float, default=0.0)  # regression: sum of squared errors
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LatencyHistogram(Base):
    """Latency bucket counts and status counts per deployment, calling organization and minute."""

    __tablename__ = "deployment_latency"
    deployment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    caller_org_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    buckets: Mapped[list[int]] = mapped_column(JSON)  # counts per LATENCY_EDGES_MS bucket (+ overflow)
    statuses: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # "200": n, "400": n
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)


class RetrainTrigger(Base):
    """A retraining the monitor started (or considered and skipped), for cooldowns and display."""

    __tablename__ = "retrain_triggers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(32), index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
