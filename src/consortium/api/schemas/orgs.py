"""Organizations: ``OrgBase`` -> ``OrgCreate`` (a body) / ``OrgPublic`` (an answer: the directory
and an organization's profile)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out


class OrgBase(BaseModel):
    name: str = Field(min_length=3, max_length=40, description="lowercase letters, digits and dashes")
    display_name: str = Field(default="", max_length=120, description="default: the name")
    description: str = Field(default="", max_length=500)


class OrgCreate(OrgBase, In):
    """A new organization; the caller becomes its owner."""


class OrgPublic(OrgBase, Out):
    id: str
    display_name: str
    description: str
    created_at: datetime
