"""Grants: an owner organization gives a grantee (organization or project) a permission on a resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class Grant(Base):
    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_lookup", "resource_type", "resource_id", "permission"),
                      # the list's key per side, oldest first (migration 0003)
                      Index("ix_grants_owner_created", "owner_org_id", "created_at", "id"),
                      Index("ix_grants_grantee_created", "grantee_org_id", "created_at", "id"),
                      Index("ix_grants_project_created", "grantee_project_id", "created_at", "id"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    owner_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    grantee_org_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True)
    grantee_project_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    permission: Mapped[str] = mapped_column(String(16))
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
