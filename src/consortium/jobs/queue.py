"""The job queue, persisted in the database: submit, claim with a lease, heartbeat, finish, cancel, reap.

States: queued -> running -> succeeded | failed | cancelled. A worker claims one queued job
atomically (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: its single writer makes the
conditional ``UPDATE`` atomic) and heartbeats while it runs. A running job whose heartbeat is
older than the lease (its worker or the hub died) is re-queued while it has attempts left, and
otherwise failed with the reason, so no job stays "running" forever.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow

# the terminal states are the table's (store.tables.jobs); queue.TERMINAL is re-exported for callers
from consortium.store.tables.jobs import TERMINAL as TERMINAL
from consortium.store.tables.jobs import Job, JobEvent

LEASE = timedelta(seconds=30)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def submit(session: Session, *, org_id: str, user_id: str, kind: str, name: str, recipe: dict[str, Any],
           resolved: dict[str, Any] | None = None, project_id: str | None = None, max_attempts: int = 2) -> Job:
    """Queue a job: ``recipe`` is the validated recipe (``Recipe.to_dict``), ``resolved`` what the
    submission checks found (dataset versions and owners, planned privacy spend)."""
    job = Job(id=new_id("job"), org_id=org_id, user_id=user_id, kind=kind, name=name[:120], recipe=recipe,
              resolved=resolved or {}, project_id=project_id, state="queued", progress={},
              max_attempts=max_attempts)
    session.add(job)
    session.flush()
    add_event(session, job.id, "state", {"state": "queued"})
    return job


def add_event(session: Session, job_id: str, kind: str, data: dict[str, Any]) -> None:
    session.add(JobEvent(job_id=job_id, kind=kind, data=data))


def claim(session: Session, worker: str, kinds: list[str] | None = None) -> Job | None:
    """Atomically take the oldest queued job; commits the claim."""
    pick = select(Job.id).where(Job.state == "queued", Job.cancel_requested.is_(False))
    if kinds:
        pick = pick.where(Job.kind.in_(kinds))
    pick = pick.order_by(Job.created_at).limit(1)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    now = utcnow()
    row = session.execute(update(Job).where(Job.id == pick.scalar_subquery(), Job.state == "queued")
                          .values(state="running", worker_id=worker, started_at=now, heartbeat_at=now,
                                  attempts=Job.attempts + 1)
                          .returning(Job.id)).first()
    if row is None:
        session.commit()
        return None
    add_event(session, row.id, "state", {"state": "running", "worker": worker})
    session.commit()
    return session.get(Job, row.id)


def heartbeat(session: Session, job_id: str, worker: str) -> bool:
    """Extend the lease; returns whether cancellation was requested."""
    session.execute(update(Job).where(Job.id == job_id, Job.worker_id == worker, Job.state == "running")
                    .values(heartbeat_at=utcnow()))
    flag = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    session.commit()
    return bool(flag)


def finish(session: Session, job_id: str, state: str, *, result: dict[str, Any] | None = None,
           error: str | None = None) -> None:
    if state not in TERMINAL:
        raise InvalidInput(f"a job finishes as one of {sorted(TERMINAL)}, not {state!r}")
    session.execute(update(Job).where(Job.id == job_id).values(state=state, result=result, error=error,
                                                               finished_at=utcnow()))
    add_event(session, job_id, "state", {"state": state, **({"error": error} if error else {})})


def request_cancel(session: Session, job: Job) -> Job:
    if job.state in TERMINAL:
        raise Conflict(f"job {job.id} already {job.state}")
    job.cancel_requested = True
    if job.state == "queued":
        job.state, job.finished_at = "cancelled", utcnow()
        add_event(session, job.id, "state", {"state": "cancelled"})
    return job


def reap(session: Session, lease: timedelta = LEASE) -> list[str]:
    """Re-queue or fail running jobs whose worker stopped heartbeating. Commits."""
    cutoff = utcnow() - lease
    stale = list(session.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)
                                 .with_for_update(skip_locked=True)
                                 if session.bind is not None and session.bind.dialect.name == "postgresql"
                                 else select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)))
    touched = []
    for job in stale:
        release(session, job, f"worker {job.worker_id} stopped responding "
                              f"(no heartbeat for {int(lease.total_seconds())} s)")
        touched.append(job.id)
    session.commit()
    return touched


def release(session: Session, job: Job, reason: str) -> str:
    """A running job whose runner is gone (``reason``): cancelled if that was asked, re-queued while
    it has attempts left, else failed with the reason. Returns the new state; commit is the caller's."""
    if job.cancel_requested:
        job.state, job.finished_at = "cancelled", utcnow()
        add_event(session, job.id, "state", {"state": "cancelled", "reason": reason})
    elif job.attempts < job.max_attempts:
        job.state, job.worker_id = "queued", None
        add_event(session, job.id, "state", {"state": "queued", "reason": reason + "; re-queued"})
    else:
        job.state, job.error, job.finished_at = "failed", reason, utcnow()
        add_event(session, job.id, "state", {"state": "failed", "error": reason})
    return str(job.state)


def events(session: Session, job_id: str, after: int = 0, limit: int = 500,
           kinds: list[str] | None = None) -> list[JobEvent]:
    return events_listing(job_id, after, kinds).page(session, None, limit).items


def events_listing(job_id: str, after: int = 0, kinds: list[str] | None = None) -> Listing:
    """A job's events after event id ``after``, oldest first."""
    q = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
    if kinds:
        q = q.where(JobEvent.kind.in_(kinds))
    return Listing(q, (JobEvent.id,))


def get(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


def counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return {s: n for s, n in rows}


