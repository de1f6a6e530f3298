"""Jobs (training, tuning, federated runs) and their event stream (progress, logs, state changes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow

# a job's states: queued -> running -> one of these, which it never leaves
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),
                      Index("ix_jobs_org_created", "org_id", "created_at", "id"))  # the list's key (0303)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)  # the validated recipe, normalized (Recipe.to_dict)
    # what the submission checks resolved: {"datasets": [{dataset, dataset_id, version, owner, owner_org_id}],
    # "privacy": {dataset_id: {epsilon, delta}}} (DP federated jobs)
    resolved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # latest snapshot
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=2)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)  # the list's key (0303)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # progress | log | state
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class JobExecutor(Base):
    """What a dispatcher of an external executor (a Ray cluster) last reported about its cluster, so
    the hub's submission checks read the cluster's size from the database instead of calling it."""

    __tablename__ = "job_executors"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)  # the dispatcher (queue.worker_name)
    kind: Mapped[str] = mapped_column(String(16))  # ray
    cpus: Mapped[int] = mapped_column(Integer)  # the cluster's CPUs, all nodes
    nodes: Mapped[int] = mapped_column(Integer)  # nodes alive
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # ray.cluster_resources()
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
