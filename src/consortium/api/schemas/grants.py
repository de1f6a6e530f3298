"""Grants across organizations: ``GrantBase`` -> ``GrantCreate`` (a body) / ``GrantPublic`` (an answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out


class GrantBase(BaseModel):
    resource_type: str = Field(description="dataset, deployment, ...")
    permission: str = Field(description="metadata, compute, download or invoke")
    grantee_org: str | None = Field(default=None, description="the organization that receives it")
    expires_at: datetime | None = None


class GrantCreate(GrantBase, In):
    resource: str = Field(description="the resource: its id or org/name")
    grantee_project: str | None = Field(default=None, description="or: every active member of this project")
    limits: dict[str, int] | None = Field(default=None, description="invoke quotas: per_minute, per_day")


class GrantPublic(GrantBase, Out):
    id: str
    resource_id: str
    resource: str
    owner_org: str
    grantee_org: str | None
    grantee_project_id: str | None
    limits: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: str
