"""The organization directory, and creating an organization."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep
from consortium.api.schemas import In, Out
from consortium.governance import identity
from consortium.governance.principal import Principal
from consortium.governance.roles import Role

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


def org_founder(p: Caller) -> Principal:
    """Creating an organization needs the admin or owner role on the credential used (checked
    before the body, like every role)."""
    p.require(Role.admin, "creating an organization")
    return p


@router.get("", response_model=list[OrgOut])
@rule("self")
def list_orgs(p: Caller, session: SessionDep) -> list[OrgOut]:
    """The directory of organizations on this hub (names only, so that grants can name them)."""
    return [OrgOut.model_validate(org) for org in identity.list_orgs(session)]


@router.post("", response_model=OrgOut, status_code=201)
@rule("org", Role.admin)
def create_org(p: Annotated[Principal, Depends(org_founder)], body: OrgIn, session: SessionDep,
               ctx: Ctx) -> OrgOut:
    """Create an organization; the caller becomes its owner. Needs the admin or owner role in the
    current organization; at most 3 a day per user (hub operators: 20); 429 with ``Retry-After``."""
    org = identity.found_org(session, p, body.name, body.display_name, body.description)
    ctx.resource("organization", org.id, org.id)
    return OrgOut.model_validate(org)


@router.get("/{name}", response_model=OrgOut)
@rule("self")
def get_org(name: str, p: Caller, session: SessionDep) -> OrgOut:
    """An organization's public profile."""
    return OrgOut.model_validate(identity.org_by_name(session, name))
