"""Invitations add a member to an organization; the invitee accepts with the one-time token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Svc, client_address
from consortium.api.schemas import In, Out
from consortium.errors import NotFound
from consortium.governance import identity, throttle
from consortium.governance.roles import Role

router = APIRouter(prefix="/invitations", tags=["invitations"])


class InviteIn(In):
    email: str = Field(max_length=254)
    role: Role = Role.member
    days: int = Field(default=7, ge=1, le=30)


class InvitationOut(Out):
    id: str
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationCreated(InvitationOut):
    token: str = Field(description="shown once: give it to the invitee")


class AcceptIn(In):
    token: str = Field(max_length=200)
    name: str = Field(default="", max_length=120)
    password: str = Field(max_length=200)


class AcceptOut(Out):
    user_id: str
    email: str
    org: str
    role: str


def invitation_in_my_org(invitation_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> str:
    owner = identity.invitation_org(session, invitation_id)
    if owner is not None:  # recorded for the owner's audit trail, even when refused
        ctx.resource("invitation", invitation_id, owner)
    if owner != p.org_id:
        raise NotFound(f"invitation {invitation_id!r} not found")
    return invitation_id


@router.post("", response_model=InvitationCreated, status_code=201)
@rule("org", Role.admin)
def create_invitation(body: InviteIn, p: Admin, session: SessionDep, ctx: Ctx) -> InvitationCreated:
    inv, token = identity.invite(session, p, body.email, body.role, body.days)
    ctx.resource("invitation", inv.id, p.org_id)
    ctx.details = {"email": inv.email, "role": inv.role}
    return InvitationCreated(**InvitationOut.model_validate(inv).model_dump(), token=token)


@router.get("", response_model=list[InvitationOut])
@rule("org", Role.admin)
def list_invitations(p: Admin, session: SessionDep) -> list[InvitationOut]:
    return [InvitationOut.model_validate(inv) for inv in identity.list_invitations(session, p)]


@router.delete("/{invitation_id}", response_model=InvitationOut)
@rule("resource", Role.admin)
def revoke_invitation(invitation_id: Annotated[str, Depends(invitation_in_my_org)], p: Caller,
                      session: SessionDep) -> InvitationOut:
    return InvitationOut.model_validate(identity.revoke_invitation(session, p, invitation_id))


@router.post("/accept", response_model=AcceptOut)
@rule("credential")
def accept_invitation(body: AcceptIn, session: SessionDep, ctx: Ctx, svc: Svc, request: Request) -> AcceptOut:
    """Accept with the invitation token; creates the account when the email has none yet.
    Throttled per client address (token guessing) and, for an existing account, per account:
    429 with ``Retry-After`` after repeated failures."""
    with throttle.attempt(session, svc.session_factory, (throttle.ACCEPT_ADDRESS, client_address(request))) as a:
        user, org, m = identity.accept_invitation(session, body.token, body.name, body.password, a)
    ctx.resource("organization", org.id, org.id)
    ctx.details = {"email": user.email}
    return AcceptOut(user_id=user.id, email=user.email, org=org.name, role=m.role)
