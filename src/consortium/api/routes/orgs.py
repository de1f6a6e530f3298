"""The organization directory, and creating an organization."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import select

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep
from consortium.api.schemas import In, Out
from consortium.governance import identity
from consortium.governance.roles import Role
from consortium.store.tables.identity import Organization

router = APIRouter(prefix="/orgs", tags=["organizations"])


class OrgIn(In):
    name: str = Field(min_length=3, max_length=40, description="lowercase letters, digits and dashes")
    display_name: str = Field(default="", max_length=120)
    description: str = Field(default="", max_length=500)


class OrgOut(Out):
    id: str
    name: str
    display_name: str
    description: str
    created_at: datetime


@router.get("", response_model=list[OrgOut])
@rule("self")
def list_orgs(p: Caller, session: SessionDep) -> list[Organization]:
    """The directory of organizations on this hub (names only, so that grants can name them)."""
    return list(session.scalars(select(Organization).order_by(Organization.name)))


@router.post("", response_model=OrgOut, status_code=201)
@rule("self")
def create_org(body: OrgIn, p: Caller, session: SessionDep, ctx: Ctx) -> Organization:
    """Create an organization; the caller becomes its owner."""
    org = identity.create_org(session, body.name, body.display_name, body.description)
    identity.add_member(session, org.id, p.user_id, Role.owner)
    ctx.resource("organization", org.id, org.id)
    return org


@router.get("/{name}", response_model=OrgOut)
@rule("self")
def get_org(name: str, p: Caller, session: SessionDep) -> Organization:
    """An organization's public profile."""
    return identity.org_by_name(session, name)
