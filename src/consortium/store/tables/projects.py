"""Projects: collaboration spaces that several organizations join, with agreed terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class Project(Base):
    """Named per creating organization (``org~name``): a name says nothing about other organizations."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("created_by_org", "name", name="uq_projects_org_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(2000))
    terms: Mapped[list[str]] = mapped_column(JSON)  # permissions members agree to extend to the project
    default_quota: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {per_minute, per_day}
    created_by_org: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectMember(Base):
    __tablename__ = "project_members"
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True,
                                        index=True)
    role: Mapped[str] = mapped_column(String(16))  # lead | member
    state: Mapped[str] = mapped_column(String(16))  # invited | active | declined | left | removed
    quota: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # per-org override
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
