"""Jobs: submit a recipe, list, inspect, follow progress (polling or server-sent events), cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, Member, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.responses import JOB_EVENTS, EventStream
from consortium.api.schemas import NonNegInt32
from consortium.api.schemas.jobs import JobCreate, JobEventPublic, JobPublic
from consortium.errors import InvalidInput, NotFound, PermissionDenied
from consortium.governance import projects
from consortium.governance.roles import Role
from consortium.jobs import access, queue
from consortium.jobs.access import Job
from consortium.jobs.submit import submit_recipe

router = APIRouter(prefix="/jobs", tags=["jobs"])


def visible_job(job_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> Job:
    job = access.find(session, job_id)
    if job is not None:  # set before the check: the owner sees a refused attempt
        ctx.resource("job", job.id, job.org_id, job.project_id)
    return access.require_visible(session, p, job, job_id)


JobDep = Annotated[Job, Depends(visible_job)]


@router.post("", response_model=JobPublic, status_code=201)
@rule("org", Role.member)
def submit_job(body: JobCreate, p: Member, session: SessionDep, svc: Svc, ctx: Ctx) -> Job:
    """Queue a training (or federated, when the recipe has a `federated` section) job."""
    project_id = None
    if body.project:  # authorized like a path parameter: another organization's project is 404
        named = projects.find(session, body.project)  # named exactly: its creator sees a refused attempt
        if named is not None:  # (in its own audit, not the project's: an outsider writes nothing there)
            ctx.resource("project", named.id, named.created_by_org)
        project_id = projects.for_work(session, p, body.project, "running jobs in it").id
    try:
        job, _ = submit_recipe(session, p, body.recipe, svc.submit_checks, project_id=project_id)
    except (NotFound, PermissionDenied) as e:
        refused = e.details if isinstance(e.details, dict) else {}
        if "rules" in refused:  # a dataset policy refused it: its owner sees which rules (issue 19)
            ctx.resource("dataset", refused["dataset_id"], refused["owner_org_id"])
            ctx.details = {"policy_refused": refused["dataset"], "rules": refused["rules"]}
        else:
            _record_refused_datasets(session, ctx, body.recipe)
        raise
    ctx.resource("job", job.id, p.org_id, project_id)
    ctx.details = {"kind": job.kind, "name": job.name, "datasets": job.resolved}
    return job


def _record_refused_datasets(session: Any, ctx: Any, source: dict[str, Any] | str) -> None:
    """A refused job names datasets: record the first existing one so its owner sees the attempt."""
    from consortium.data import catalog
    from consortium.recipe import parse_recipe

    try:
        recipe = parse_recipe(source)
    except InvalidInput:  # the refusal came first; a recipe that does not parse names no dataset
        return
    refs = list(recipe.federated.datasets) if recipe.federated else [recipe.data.dataset or ""]
    for ref in refs:
        found = catalog.resolve(session, ref) if "/" in ref else None
        if found:
            ctx.resource("dataset", found[0], found[1])
            ctx.details = {"refused_datasets": refs}
            return


@router.get("", response_model=Paged[JobPublic])
@rule("org")
def list_jobs(p: Viewer, session: SessionDep, page: PageDep,
              state: Annotated[str | None, Query(pattern=f"^({'|'.join(access.STATES)})$")] = None) -> dict[str, Any]:
    """Your organization's jobs, newest first."""
    return page.out(access.jobs_listing(p, state).page(session, page.after, page.limit))


@router.get("/{job_id}", response_model=JobPublic)
@rule("resource")
def get_job(job: JobDep) -> Job:
    return job


@router.post("/{job_id}/cancel", response_model=JobPublic)
@rule("resource", Role.member)
def cancel_job(job: JobDep, p: Member, session: SessionDep) -> Job:
    """Cancel a queued or running job (a running one stops at its next check, within seconds)."""
    if job.org_id != p.org_id:
        p.require(Role.owner, "cancelling another organization's job")
    return queue.request_cancel(session, job)


@router.get("/{job_id}/events", response_model=Paged[JobEventPublic])
@rule("resource")
def job_events(job: JobDep, session: SessionDep, page: PageDep, after: Annotated[NonNegInt32, Query()] = 0,
               kind: Annotated[str | None, Query(pattern="^(progress|log|state)$")] = None) -> dict[str, Any]:
    """Progress, log and state events after event id `after`, oldest first (follow ``next_cursor``
    to the end, then poll with the last id you saw as `after`)."""
    return page.out(queue.events_listing(job.id, after, [kind] if kind else None).page(session, page.after, page.limit))


@router.get("/{job_id}/stream", response_class=EventStream, responses=JOB_EVENTS)
@rule("resource")
async def job_stream(job: JobDep, request: Request,
                     after: Annotated[NonNegInt32, Query(description="start after this event id")] = 0,
                     last_event_id: Annotated[NonNegInt32, Header(description="set by a reconnecting "
                                                                  "EventSource")] = 0,
                     ) -> StreamingResponse:
    """Server-sent events: each job event as it happens, then ``end`` once the job has ended. A
    reconnecting client (``Last-Event-ID``) or ``?after=`` resumes after that event."""
    factory = request.app.state.services.session_factory
    job_id = job.id
    start = max(after, last_event_id)

    async def gen() -> AsyncIterator[str]:
        after = start
        while True:
            def poll(after: int = after) -> tuple[list[dict[str, Any]], str]:
                with factory() as s:
                    evs = queue.events(s, job_id, after, 500)
                    state = access.state_of(s, job_id)
                    return [{"id": e.id, "time": e.time.isoformat(), "kind": e.kind, "data": e.data}
                            for e in evs], state
            evs, state = await asyncio.to_thread(poll)
            for e in evs:
                after = e["id"]
                yield f"id: {e['id']}\nevent: {e['kind']}\ndata: {json.dumps(e)}\n\n"
            if state in queue.TERMINAL and not evs:
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(gen(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache"})
