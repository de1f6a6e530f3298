"""Members of an organization: ``MemberBase`` -> ``MemberUpdate`` (a body: the new role) /
``MemberPublic`` (an answer). Answers are read from ``consortium.governance.identity.Member``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from consortium.api.schemas import In, Out
from consortium.governance.roles import Role


class MemberBase(BaseModel):
    role: Role


class MemberUpdate(MemberBase, In):
    """A member's new role (only an owner grants or takes away the owner role)."""


class MemberPublic(MemberBase, Out):
    user_id: str
    email: str
    name: str
    joined_at: datetime
