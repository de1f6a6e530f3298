"""Job pages: the list, the new-job form (common cases or YAML), and a job watched live."""

from __future__ import annotations

import re

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


@router.get("/compare", name="ui.compare")
@rule("page")
def compare_page(request: Request, p: Caller, jobs: str = "", model: str = "", versions: str = "") -> HTMLResponse:
    """Two to four runs (``jobs=id,id``) or versions of one model (``model=org/name&versions=1,2``)
    side by side; each is read through the API with the caller's access, like its own page."""
    from consortium.errors import InvalidInput

    job_ids = [j for j in jobs.split(",") if j][:5]
    numbers = [v for v in versions.split(",") if v][:5]
    picked = job_ids or numbers
    if (not 2 <= len(picked) <= 4 or not all(v.isdigit() and len(v) < 10 for v in numbers)
            or not all(re.fullmatch(r"job_\w{1,64}", j) for j in job_ids)
            or (numbers and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}", model))):
        raise InvalidInput("compare 2 to 4 runs (jobs=ID,ID) or versions of one model (model=ORG/NAME&versions=1,2)",
                           hint="tick 2 to 4 rows in the jobs or model table, then Compare")
    if job_ids:
        back, label, title = "/jobs", "Jobs", f"Compare {len(job_ids)} runs"
    else:
        back, label, title = f"/models/{model}", model, f"Compare {len(numbers)} versions of {model}"
    return page(request, "compare.html", p, active="jobs" if job_ids else "models", title=title, jobs=job_ids,
                model=model, versions=numbers, back=back, back_label=label)


@router.get("/jobs/{job_id}", name="ui.job")
@rule("page")
def job_page(request: Request, job: JobDep, p: Caller) -> HTMLResponse:
    return page(request, "job.html", p, active="jobs", title=job.name, job_id=job.id, charts=True,
                own=job.org_id == p.org_id, recipe_yaml=yaml.safe_dump(job.recipe, sort_keys=False))
