"""Invitations: ``InvitationBase`` -> ``InvitationCreate`` (a body) / ``InvitationPublic`` (an
answer); ``InvitationCreated`` adds the one-time token, answered by the creation alone (a list or
a revocation never shows it: only its hash is stored). Accepting is its own pair of models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out
from consortium.governance.roles import Role


class InvitationBase(BaseModel):
    email: str = Field(max_length=254, description="the invitee's email address")
    role: Role = Field(default=Role.member, description="the role on joining (owner: only an owner invites one)")


class InvitationCreate(InvitationBase, In):
    days: int = Field(default=7, ge=1, le=30, description="days the invitation stays valid")


class InvitationPublic(InvitationBase, Out):
    id: str
    role: Role
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationCreated(InvitationPublic):
    token: str = Field(description="shown once: give it to the invitee")


class InvitationAccept(In):
    token: str = Field(max_length=200, description="the invitation's one-time token")
    name: str = Field(default="", max_length=120, description="your name, for a new account")
    password: str = Field(max_length=200, description="a new password, or your account's if you have one")


class InvitationAccepted(Out):
    user_id: str
    email: str
    org: str
    role: Role
