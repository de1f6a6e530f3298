"""Registry and deployment tables: registered models, immutable versions, aliases, deployments and
per-minute usage aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class RegisteredModel(Base):
    """A model owned by one organization (``org/name``), optionally in a project."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_registered_models_org_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    intended_use: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersion(Base):
    """One immutable version: the encrypted ONNX blob and everything needed to serve and explain it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(64))
    blob_size: Mapped[int] = mapped_column(Integer)
    onnx_sha256: Mapped[str] = mapped_column(String(64))  # of the plaintext ONNX
    onnx_size: Mapped[int] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(16), default="onnx")  # onnx | keras | training
    signature: Mapped[dict[str, Any]] = mapped_column(JSON)
    preprocessing: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    task: Mapped[str | None] = mapped_column(String(32), nullable=True)
    class_names: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    reference_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    plots: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # name -> blob key
    # for explanations: {"torch_state": blob key, "model_spec", "input_shape", "n_outputs"}
    explain: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelAlias(Base):
    """A movable name (``production``, ``staging``) pointing at one version of a model."""

    __tablename__ = "model_aliases"
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"),
                                          primary_key=True)
    alias: Mapped[str] = mapped_column(String(40), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deployment(Base):
    """A named endpoint serving one model, pinned to a version or following an alias.

    Names are unique per organization; ``/v2/models/{name}`` takes ``org~name`` or a bare name
    (see ``consortium.serving.hub.deployments``)."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_deployments_org_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version_id: Mapped[str | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    alias: Mapped[str | None] = mapped_column(String(40), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeploymentUsage(Base):
    """Calls to a deployment per calling organization per minute (kept after undeploy: no FK)."""

    __tablename__ = "deployment_usage"
    __table_args__ = (Index("ix_deployment_usage_org_minute", "caller_org_id", "minute"),)
    deployment_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    caller_org_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # over quota (429)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_max_ms: Mapped[float] = mapped_column(Float, default=0.0)
