"""Invitations add a member to an organization; the invitee accepts with the one-time token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Svc, client_address, of_my_org
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas.invitations import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
)
from consortium.governance import identity, throttle
from consortium.governance.roles import Role

router = APIRouter(prefix="/invitations", tags=["invitations"])


def invitation_in_my_org(invitation_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> str:
    return of_my_org("invitation", invitation_id, identity.invitation_org(session, invitation_id), p, ctx)


@router.post("", response_model=InvitationCreated, status_code=201)
@rule("org", Role.admin)
def create_invitation(body: InvitationCreate, p: Admin, session: SessionDep, ctx: Ctx) -> InvitationCreated:
    """Invite someone by email (admins; only an owner invites an owner). The answer holds the
    one-time token to give the invitee: it is shown this once."""
    inv, token = identity.invite(session, p, body.email, body.role, body.days)
    ctx.resource("invitation", inv.id, p.org_id)
    ctx.details = {"email": inv.email, "role": inv.role}
    return InvitationCreated(**InvitationPublic.model_validate(inv).model_dump(), token=token)


@router.get("", response_model=Paged[InvitationPublic])
@rule("org", Role.admin)
def list_invitations(p: Admin, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """The organization's invitations, oldest first (admins); never their tokens."""
    found = identity.invitations_listing(p).page(session, page.after, page.limit)
    return page.map(found, InvitationPublic.model_validate)


@router.delete("/{invitation_id}", response_model=InvitationPublic)
@rule("resource", Role.admin)
def revoke_invitation(invitation_id: Annotated[str, Depends(invitation_in_my_org)], p: Caller,
                      session: SessionDep) -> InvitationPublic:
    """Revoke a pending invitation (admins): its token stops working at once."""
    return InvitationPublic.model_validate(identity.revoke_invitation(session, p, invitation_id))


@router.post("/accept", response_model=InvitationAccepted)
@rule("credential")
def accept_invitation(body: InvitationAccept, session: SessionDep, ctx: Ctx, svc: Svc,
                      request: Request) -> InvitationAccepted:
    """Accept with the invitation token; creates the account when the email has none yet.
    Throttled per client address (token guessing) and, for an existing account, per account:
    429 with ``Retry-After`` after repeated failures."""
    with throttle.attempt(session, svc.session_factory, (throttle.ACCEPT_ADDRESS, client_address(request))) as a:
        user, org, m = identity.accept_invitation(session, body.token, body.name, body.password, a)
    ctx.resource("organization", org.id, org.id)
    ctx.details = {"email": user.email}
    return InvitationAccepted(user_id=user.id, email=user.email, org=org.name, role=Role(m.role))
