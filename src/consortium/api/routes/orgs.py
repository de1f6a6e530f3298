"""The organization directory, and creating an organization."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep, Svc
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas.orgs import OrgCreate, OrgPublic
from consortium.governance import identity
from consortium.governance.principal import Principal
from consortium.governance.roles import Role

router = APIRouter(prefix="/orgs", tags=["organizations"])


def org_founder(p: Caller) -> Principal:
    """Creating an organization needs the admin or owner role on the credential used (checked
    before the body, like every role)."""
    p.require(Role.admin, "creating an organization")
    return p


@router.get("", response_model=Paged[OrgPublic])
@rule("self")
def list_orgs(p: Caller, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """The directory of organizations on this hub, by name (names only, so that grants can name them)."""
    return page.map(identity.orgs_listing().page(session, page.after, page.limit), OrgPublic.model_validate)


@router.post("", response_model=OrgPublic, status_code=201)
@rule("org", Role.admin)
def create_org(p: Annotated[Principal, Depends(org_founder)], body: OrgCreate, session: SessionDep,
               svc: Svc, ctx: Ctx) -> OrgPublic:
    """Create an organization; the caller becomes its owner. Needs the admin or owner role in the
    current organization; at most 3 a day per user (hub operators: 20); 429 with ``Retry-After``."""
    org = identity.found_org(session, svc.keys, p, body.name, body.display_name, body.description)
    ctx.resource("organization", org.id, org.id)
    return OrgPublic.model_validate(org)


@router.get("/{name}", response_model=OrgPublic)
@rule("self")
def get_org(name: str, p: Caller, session: SessionDep) -> OrgPublic:
    """An organization's public profile."""
    return OrgPublic.model_validate(identity.org_by_name(session, name))
