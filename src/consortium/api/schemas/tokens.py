"""API tokens: ``TokenBase`` -> ``TokenCreate`` (a body) / ``TokenPublic`` (an answer);
``TokenCreated`` adds the secret, answered by the creation alone (a list or a revocation never
shows it: only its hash is stored, and ``prefix`` is enough to tell tokens apart)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out
from consortium.governance.roles import Role


class TokenBase(BaseModel):
    name: str = Field(min_length=1, max_length=80, description="unique among your live tokens in the organization")


class TokenCreate(TokenBase, In):
    role: Role | None = Field(default=None, description="at most your own role; default: your role")
    days: int = Field(default=90, ge=1, le=365, description="days until it expires")


class TokenPublic(TokenBase, Out):
    id: str
    user_id: str
    role: Role
    prefix: str = Field(description="the secret's first characters, to recognise it by")
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="shown once; store it now")
