"""Organization pages: overview (datasets, models, deployments, jobs, members, tokens, grants),
projects (members, terms, assets, activity) and the audit log (filter, verify the chain)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from consortium.api.access import rule
from consortium.api.deps import Caller
from consortium.api.routes.projects import ProjectDep
from consortium.ui.render import page
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)


@router.get("/", name="ui.overview")
@rule("page")
def overview(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "overview.html", p, active="overview", title=p.org_name)


@router.get("/projects", name="ui.projects")
@rule("page")
def projects_page(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "projects.html", p, active="projects", title="Projects")


@router.get("/projects/{project}", name="ui.project")
@rule("page")
def project_page(request: Request, pm: ProjectDep, p: Caller) -> HTMLResponse:
    return page(request, "project.html", p, active="projects", title=pm.project.name, project=pm.project.name)


@router.get("/audit", name="ui.audit")
@rule("page")
def audit_page(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "audit.html", p, active="audit", title="Audit log")
