"""Job pages: the list, the new-job form (common cases or YAML), and a job watched live."""

from __future__ import annotations

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from consortium.api.access import rule
from consortium.api.deps import Caller, Member
from consortium.api.routes.jobs import JobDep
from consortium.governance.roles import Role
from consortium.ui.render import page
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)


@router.get("/jobs", name="ui.jobs")
@rule("page")
def jobs_page(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "jobs.html", p, active="jobs", title="Jobs")


@router.get("/jobs/new", name="ui.job_new")
@rule("page", Role.member)
def new_job_page(request: Request, p: Member) -> HTMLResponse:
    return page(request, "job_new.html", p, active="jobs", title="New training job")


@router.get("/jobs/{job_id}", name="ui.job")
@rule("page")
def job_page(request: Request, job: JobDep, p: Caller) -> HTMLResponse:
    return page(request, "job.html", p, active="jobs", title=job.name, job_id=job.id, charts=True,
                own=job.org_id == p.org_id, recipe_yaml=yaml.safe_dump(job.recipe, sort_keys=False))
