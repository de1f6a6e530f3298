"""Deployments: create, list, inspect, undeploy, predict (raw features or pixels) and usage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from consortium.api import prediction
from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, Member, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas.deployments import (
    DeploymentCreate,
    DeploymentDeleted,
    DeploymentPublic,
    DeploymentUsage,
)
from consortium.governance import consent
from consortium.governance.identity import org_by_id
from consortium.governance.roles import Role
from consortium.registry import models as reg
from consortium.serving.hub import deployments as deps_svc
from consortium.serving.hub.usage import usage_rows
from consortium.store.tables.registry import Deployment

router = APIRouter(prefix="/deployments", tags=["deployments"])


def deployment_dep(deployment: str, p: Caller, session: SessionDep, ctx: Ctx) -> deps_svc.Reached:
    """``{deployment}``: an id, ``org~name``, or a bare name (see ``consortium.serving.hub.deployments``)."""
    d = deps_svc.find_deployment(session, deployment)
    if d is not None:  # named exactly: the owner sees a refused attempt too
        ctx.resource("deployment", d.id, d.org_id)
    reached = deps_svc.get_deployment(session, p, deployment)
    ctx.resource("deployment", reached.deployment.id, reached.deployment.org_id)
    return reached


DeploymentDep = Annotated[deps_svc.Reached, Depends(deployment_dep)]


@router.post("", status_code=201, response_model=DeploymentPublic, response_model_exclude_unset=True)
@rule("org", Role.member)
def create_deployment(body: DeploymentCreate, p: Member, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Serve ``[org/]model[:version|@alias]`` under a name (the latest version when neither is given)."""
    served = reg.to_serve(session, p, body.model)
    consent.require_for_project_deployment(session, served.model, served.version_id)  # issue 19: contributors
    d = deps_svc.create_deployment(session, p, body.name, served.model, version_id=served.version_id,
                                   alias=served.alias, description=body.description)
    ctx.resource("deployment", d.id, d.org_id)
    view = deps_svc.deployment_view(session, d)
    ctx.details = {"name": d.name, "model": view["model"], "version": view["version"], "alias": d.alias}
    return view


@router.get("", response_model=Paged[DeploymentPublic], response_model_exclude_unset=True)
@rule("org")
def list_deployments(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """Deployments your organization owns, then those shared with it, each by name."""
    def view(d: Deployment) -> dict[str, Any]:
        g = None if d.org_id == p.org_id else deps_svc.get_deployment(session, p, d.id).grant
        return deps_svc.deployment_view(session, d, g)

    return page.map(deps_svc.deployments_listing(session, p).page(session, page.after, page.limit), view)


@router.get("/{deployment}", response_model=DeploymentPublic, response_model_exclude_unset=True)
@rule("resource")
def get_deployment(dg: DeploymentDep, session: SessionDep) -> dict[str, Any]:
    return deps_svc.deployment_view(session, dg.deployment, dg.grant)


@router.delete("/{deployment}", response_model=DeploymentDeleted)
@rule("resource", Role.member)
def undeploy(dg: DeploymentDep, p: Caller, session: SessionDep, svc: Svc, ctx: Ctx,
             background: BackgroundTasks) -> dict[str, Any]:
    """Remove the endpoint and revoke the grants on it (usage history stays). The owner
    organization's members only: a grantee, which can see it, gets 403."""
    d = dg.deployment
    name = d.name
    revoked = deps_svc.delete_deployment(session, p, d)
    ctx.details = {"name": name, "revoked_grants": revoked}
    background.add_task(svc.serving.invalidate, name)
    return {"name": name, "deleted": True, "revoked_grants": revoked}


@router.get("/{deployment}/usage", response_model=DeploymentUsage)
@rule("resource")
def usage(dg: DeploymentDep, p: Caller, session: SessionDep, svc: Svc,
          minutes: Annotated[int, Query(ge=1, le=10080)] = 60) -> dict[str, Any]:
    """Calls per minute per calling organization (the owner sees every caller, others their own).
    Counts reach the database within about a second."""
    d = dg.deployment
    caller = None if d.org_id == p.org_id else p.org_id
    rows = usage_rows(session, d.id, caller_org_id=caller, minutes=minutes)
    names: dict[str, str] = {}

    def org(oid: str) -> str:
        if oid not in names:
            names[oid] = org_by_id(session, oid).name
        return names[oid]

    per_min = [{"minute": r.minute, "org": org(r.caller_org_id), "count": r.count, "errors": r.errors,
                "rejected": r.rejected, "latency_mean_ms": round(r.latency_sum_ms / r.count, 3) if r.count else None,
                "latency_max_ms": round(r.latency_max_ms, 3)} for r in rows]
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        t = totals.setdefault(org(r.caller_org_id), {"count": 0, "errors": 0, "rejected": 0})
        t["count"] += r.count
        t["errors"] += r.errors
        t["rejected"] += r.rejected
    return {"deployment": d.name, "minutes": minutes, "totals": totals, "per_minute": per_min}


@rule("resource")  # routed from consortium.api.routes.inference; served by consortium.api.front
async def predict(deployment: str, request: Request) -> Response:
    """``{"inputs": [[...], ...]}`` raw feature rows (lists, or objects by column) or pixel arrays.
    The version's fitted preprocessing is applied; returns predictions, class probabilities and
    class names. Quota: 429 with Retry-After."""
    try:
        body = await request.body()
    except ClientDisconnect:  # the caller went away mid-request: nothing to answer, not an error
        return Response(status_code=499)
    return await prediction.predict(request.app.state.services, request.state.ctx, request.headers,
                                    deployment, body)
