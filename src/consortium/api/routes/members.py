"""Members of the caller's organization and their roles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Viewer
from consortium.api.schemas import In, Out
from consortium.errors import NotFound
from consortium.governance import identity
from consortium.governance.roles import Role
from consortium.store.tables.identity import Membership

router = APIRouter(prefix="/members", tags=["members"])


class MemberOut(Out):
    user_id: str
    email: str
    name: str
    role: Role
    joined_at: datetime


class RoleIn(In):
    role: Role


def member_in_my_org(user_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> Membership:
    m = session.get(Membership, (user_id, p.org_id))
    if m is None:
        raise NotFound(f"user {user_id!r} is not a member of {p.org_name}")
    ctx.resource("membership", user_id, p.org_id)
    return m


MemberDep = Annotated[Membership, Depends(member_in_my_org)]


@router.get("", response_model=list[MemberOut])
@rule("org", Role.viewer)
def list_members(p: Viewer, session: SessionDep) -> list[MemberOut]:
    return [MemberOut(user_id=u.id, email=u.email, name=u.name, role=Role(m.role), joined_at=m.created_at)
            for u, m in identity.list_members(session, p.org_id)]


@router.patch("/{user_id}", response_model=MemberOut)
@rule("resource", Role.admin)
def change_role(m: MemberDep, p: Admin, body: RoleIn, session: SessionDep, ctx: Ctx) -> MemberOut:
    """Change a member's role (admins; only owners touch the owner role)."""
    ctx.details = {"role": body.role.value}
    identity.change_role(session, p, m.user_id, body.role)
    from consortium.store.tables.identity import User

    u = session.get(User, m.user_id)
    assert u is not None
    return MemberOut(user_id=u.id, email=u.email, name=u.name, role=Role(m.role), joined_at=m.created_at)


@router.delete("/{user_id}", status_code=204)
@rule("resource", Role.admin)
def remove_member(m: MemberDep, p: Caller, session: SessionDep) -> Response:
    """Remove a member (admins), or leave the organization yourself."""
    identity.remove_member(session, p, m.user_id)
    return Response(status_code=204)


