"""Who sees which job: the submitting organization, and the active members of the job's project.

The routes resolve ``/jobs/{job_id}`` with ``find`` (to audit the attempt against the job's owner)
and then ``require_visible``; another organization's job outside a shared project is the same 404
as a missing one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import NotFound
from consortium.governance import projects
from consortium.governance.principal import Principal
from consortium.store.paging import Listing
from consortium.store.tables.jobs import Job

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def find(session: Session, job_id: str) -> Job | None:
    """The job with this id, whoever may see it (no check: pair it with ``require_visible``)."""
    return session.get(Job, job_id)


def may_see(session: Session, p: Principal, job: Job) -> bool:
    if job.org_id == p.org_id:
        return True
    return bool(job.project_id) and job.project_id in projects.active_project_ids(session, p.org_id)


def require_visible(session: Session, p: Principal, job: Job | None, job_id: str) -> Job:
    """``job`` if the caller's organization may see it, else ``NotFound`` (also for ``None``)."""
    if job is None or not may_see(session, p, job):
        raise NotFound(f"job {job_id!r} not found", hint="list your organization's jobs with `consortium jobs list`")
    return job


def list_jobs(session: Session, p: Principal, state: str | None = None, limit: int = 50) -> list[Job]:
    """The caller's organization's jobs, newest first, optionally in one state."""
    return jobs_listing(p, state).page(session, None, limit).items


def jobs_listing(p: Principal, state: str | None = None) -> Listing:
    q = select(Job).where(Job.org_id == p.org_id)
    if state:
        q = q.where(Job.state == state)
    return Listing(q, (Job.created_at, Job.id), desc=True)


def state_of(session: Session, job_id: str) -> str:
    """The job's current state (``NotFound`` once it is gone)."""
    state = session.scalar(select(Job.state).where(Job.id == job_id))
    if state is None:
        raise NotFound(f"job {job_id!r} not found")
    return state
