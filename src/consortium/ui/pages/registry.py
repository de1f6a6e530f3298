"""Model and deployment pages: model cards, one version (metrics, plots, lineage), deployments
(aliases, usage and latency charts, invoke grants, the try-it form)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep
from consortium.api.routes.deployments import DeploymentDep
from consortium.api.routes.models import ModelDep
from consortium.api.schemas import VersionRef
from consortium.registry import models as reg
from consortium.ui.render import has_route, page
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)


@router.get("/models", name="ui.models")
@rule("page")
def models_page(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "models.html", p, active="models", title="Models")


@router.get("/models/{owner}/{model}", name="ui.model")
@rule("page")
def model_page(request: Request, m: ModelDep, p: Caller) -> HTMLResponse:
    owner = request.path_params["owner"]
    return page(request, "model.html", p, active="models", title=f"{owner}/{m.name}", owner=owner,
                name=m.name, own=m.org_id == p.org_id)


@router.get("/models/{owner}/{model}/versions/{version}", name="ui.version")
@rule("page")
def version_page(request: Request, m: ModelDep, version: VersionRef, p: Caller, session: SessionDep,
                 ctx: Ctx) -> HTMLResponse:
    v = reg.get_version(session, m, version)  # 404 page for a version that does not exist
    ctx.details = {"version": v.version}
    owner = request.path_params["owner"]
    explain = bool(getattr(v, "explain", None)) and has_route(  # only versions that kept their torch weights
        request, "/api/v1/models/{owner}/{model}/versions/{version}/explain", "POST")
    return page(request, "version.html", p, active="models", title=f"{owner}/{m.name} v{v.version}",
                owner=owner, name=m.name, version=v.version, own=m.org_id == p.org_id, explain=explain)


@router.get("/deployments", name="ui.deployments")
@rule("page")
def deployments_page(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "deployments.html", p, active="deployments", title="Deployments")


@router.get("/deployments/{deployment}", name="ui.deployment")
@rule("page")
def deployment_page(request: Request, dg: DeploymentDep, p: Caller) -> HTMLResponse:
    d = dg.deployment
    base = "/api/v1/deployments/{deployment}"
    return page(request, "deployment.html", p, active="deployments", title=d.name, deployment=d.name,
                own=d.org_id == p.org_id, charts=True,
                drift=d.org_id == p.org_id and has_route(request, base + "/drift"),  # the owner's only
                feedback=has_route(request, base + "/feedback"))
