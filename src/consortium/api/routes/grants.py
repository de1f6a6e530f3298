"""Grants across organizations: give, list, inspect and revoke."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas.grants import GrantCreate, GrantPublic
from consortium.governance import consent, grants, projects
from consortium.governance.grants import Grant
from consortium.governance.roles import Role

router = APIRouter(prefix="/grants", tags=["grants"])


def visible_grant(grant_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> Grant:
    g = grants.get_grant(session, p, grant_id)
    ctx.resource("grant", g.id, g.owner_org_id)
    return g


GrantDep = Annotated[Grant, Depends(visible_grant)]


@router.post("", response_model=GrantPublic, status_code=201)
@rule("org", Role.admin)
def create_grant(body: GrantCreate, p: Admin, session: SessionDep, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Give another organization (or a project's members) a permission on one of your resources."""
    project_id = None
    if body.grantee_project is not None:  # a project the caller's organization is not in: 404, as if absent
        project_id = projects.for_work(session, p, body.grantee_project, "granting to the project").id
    g = grants.create_grant(session, p, svc.resource_types.get(body.resource_type), body.resource, body.permission,
                            grantee_org=body.grantee_org, grantee_project_id=project_id,
                            expires_at=body.expires_at, limits=body.limits)
    ctx.resource(g.resource_type, g.resource_id, p.org_id, project_id)
    consent.require_for_grant(session, g)  # a derived model's contributors consent to its audience (issue 19)
    ctx.details = {"grant": g.id, "permission": g.permission, "grantee_org": body.grantee_org,
                   "grantee_project": body.grantee_project}
    return grants.grant_view(session, g, svc.resource_types)


@router.get("", response_model=Paged[GrantPublic])
@rule("org")
async def list_grants(p: Viewer, session: SessionDep, svc: Svc, page: PageDep,
                      direction: Annotated[str, Query(pattern="^(given|received|all)$")] = "all") -> dict[str, Any]:
    """Grants your organization gave, received, or both, oldest first."""
    # one thread hop for the page's statements; the answer is checked and encoded on the loop
    return page.out(await anyio.to_thread.run_sync(grants.grant_page, session, p, direction, svc.resource_types,
                                                   page.after, page.limit))


@router.get("/{grant_id}", response_model=GrantPublic)
@rule("resource")
def get_grant(g: GrantDep, session: SessionDep, svc: Svc) -> dict[str, Any]:
    return grants.grant_view(session, g, svc.resource_types)


@router.delete("/{grant_id}", response_model=GrantPublic)
@rule("resource", Role.admin)
def revoke_grant(g: GrantDep, p: Caller, session: SessionDep, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Revoke a grant your organization gave. Takes effect at once."""
    grants.revoke_grant(session, p, g.id)
    ctx.details = {"grant": g.id}
    return grants.grant_view(session, g, svc.resource_types)
