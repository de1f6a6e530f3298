"""Members of the caller's organization and their roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas.members import MemberPublic, MemberUpdate
from consortium.governance import identity
from consortium.governance.identity import Member
from consortium.governance.roles import Role

router = APIRouter(prefix="/members", tags=["members"])


def member_in_my_org(user_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> Member:
    found = identity.membership(session, p, user_id)
    ctx.resource("membership", user_id, p.org_id)
    return found


MemberDep = Annotated[Member, Depends(member_in_my_org)]


@router.get("", response_model=Paged[MemberPublic])
@rule("org", Role.viewer)
def list_members(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """The members of your organization, by email."""
    found = identity.members_listing(p).page(session, page.after, page.limit)
    return page.map(found, lambda row: MemberPublic.model_validate(Member(*row)))


@router.patch("/{user_id}", response_model=MemberPublic)
@rule("resource", Role.admin)
def change_role(found: MemberDep, p: Admin, body: MemberUpdate, session: SessionDep, ctx: Ctx) -> MemberPublic:
    """Change a member's role (admins; only owners touch the owner role). Takes effect at once:
    the member's tokens never act above the new role."""
    ctx.details = {"role": body.role.value}
    return MemberPublic.model_validate(identity.change_role(session, p, found.user_id, body.role))


@router.delete("/{user_id}", status_code=204, response_model=None)
@rule("resource", Role.admin)
def remove_member(found: MemberDep, p: Caller, session: SessionDep, ctx: Ctx) -> Response:
    """Remove a member (admins), or leave the organization yourself: the member's tokens and web
    sessions in the organization end at once, for good (a member invited again starts afresh)."""
    tokens, sessions = identity.remove_member(session, p, found.user_id)
    ctx.details = {"tokens_revoked": tokens, "sessions_ended": sessions}
    return Response(status_code=204)
