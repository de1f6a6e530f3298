"""Retention: how long an organization keeps each version of a dataset and its jobs' logs, and the
purge of what has expired, each purge audited.

A rule (``RetentionRule``) says ``days``: a dataset's versions are kept that many days after their
upload (``dataset_versions``), the organization's job logs (progress and log events, not the
state changes) that many days after the job ended (``job_logs``). Prediction logs keep their
deployment's ``retention_days`` (``consortium.monitoring``), purged and audited by the monitor.

``purge_expired`` runs on a schedule in every job worker (``consortium.jobs.worker``, every
``CONSORTIUM_RETENTION_EVERY_S``, default 300 s) and on demand (``POST /api/v1/retention/purge``,
hub operators). Each rule is purged in its own transaction with its audit events: an expired
version goes the way a deletion goes (``deletion.delete``: the row, then the blob once committed,
an orphan blob at worst); a version a queued or running job reads waits for the next run.

>>> with transaction(svc.session_factory) as s:                                  # doctest: +SKIP
...     set_rule(s, admin, "dataset_versions", ds.id, 30)
>>> purge_expired(svc.session_factory, svc.blobs, svc.audit_in)                  # doctest: +SKIP
{'dataset_versions': 2, 'job_log_events': 120, 'deferred': 0}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from consortium.data import catalog, deletion
from consortium.errors import Conflict, InvalidInput
from consortium.governance.audit import EventDraft
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs
from consortium.store.db import transaction
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.data import Dataset, DatasetVersion
from consortium.store.tables.identity import Organization
from consortium.store.tables.jobs import Job, JobEvent
from consortium.store.tables.protection import RetentionRule

log = logging.getLogger(__name__)
KINDS = ("dataset_versions", "job_logs")
MAX_DAYS = 36500
PURGED_EVENT_KINDS = ("log", "progress")  # a job's state changes stay: they are its history, not its log
Audit = Callable[[Session, list[EventDraft]], None]


def set_rule(session: Session, p: Principal, kind: str, target_id: str, days: int | None) -> RetentionRule | None:
    """Set (``days``) or remove (None) a retention period of the caller's organization (admins)."""
    p.require(Role.admin, "setting retention periods")
    if kind not in KINDS:
        raise InvalidInput(f"retention kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}; got {days}", hint="omit it to keep forever")
    row = session.scalar(select(RetentionRule).where(RetentionRule.org_id == p.org_id, RetentionRule.kind == kind,
                                                     RetentionRule.target_id == target_id))
    if days is None:
        if row is not None:
            session.delete(row)
            session.flush()
        return None
    if row is None:
        row = RetentionRule(id=new_id("ret"), org_id=p.org_id, kind=kind, target_id=target_id, days=days)
        session.add(row)
    row.days, row.set_by, row.updated_at = days, p.user_id, utcnow()
    session.flush()
    return row


def rules_of(session: Session, org_id: str) -> list[dict[str, Any]]:
    out = []
    for r in session.scalars(select(RetentionRule).where(RetentionRule.org_id == org_id)
                             .order_by(RetentionRule.kind, RetentionRule.target_id)):
        ds = session.get(Dataset, r.target_id) if r.kind == "dataset_versions" else None
        target = catalog.full_name(session, ds) if ds is not None else (r.target_id or None)
        out.append({"id": r.id, "kind": r.kind, "target": target, "days": r.days, "updated_at": r.updated_at})
    return out


def _acting(session: Session, r: RetentionRule) -> Principal:
    """The organization's retention acting as an admin of it (audited as the rule's author)."""
    org = session.get(Organization, r.org_id)
    return Principal(r.set_by or "", "", r.org_id, org.name if org else r.org_id, Role.admin, f"retention:{r.id}")


def _purge_versions(session: Session, blobs: SealedBlobs, r: RetentionRule, now: datetime) -> tuple[int, int,
                                                                                                      list[EventDraft]]:
    ds = session.get(Dataset, r.target_id)
    if ds is None:  # the dataset is gone: so is its rule
        session.delete(r)
        return 0, 0, []
    cutoff = now - timedelta(days=r.days)
    expired = list(session.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id,
                                                                DatasetVersion.created_at < cutoff)
                                   .order_by(DatasetVersion.version)))
    p, name = _acting(session, r), catalog.full_name(session, ds)
    done, deferred, events = 0, 0, []
    for v in expired:
        number, size, created = v.version, v.size_bytes, v.created_at
        try:  # refused before it changes anything
            deletion.delete(session, blobs, p, ds, number)
        except Conflict as e:  # a job reads it now: the next run purges it
            log.info("retention of %s version %s deferred: %s", name, number, e.message)
            deferred += 1
            continue
        done += 1
        events.append(EventDraft("retention.purge_dataset_version", actor_user_id=r.set_by, actor_org_id=r.org_id,
                                 resource_type=catalog.RTYPE, resource_id=ds.id, resource_org_id=ds.org_id,
                                 request_id=f"retention:{r.id}",
                                 details={"dataset": name, "version": number, "bytes": size, "days": r.days,
                                          "uploaded_at": created.isoformat()}))
    return done, deferred, events


def _purge_job_logs(session: Session, r: RetentionRule, now: datetime) -> tuple[int, list[EventDraft]]:
    cutoff = now - timedelta(days=r.days)
    jobs = select(Job.id).where(Job.org_id == r.org_id, Job.finished_at.is_not(None), Job.finished_at < cutoff)
    res = session.execute(delete(JobEvent).where(JobEvent.job_id.in_(jobs), JobEvent.kind.in_(PURGED_EVENT_KINDS))
                          .execution_options(synchronize_session=False))
    n = int(getattr(res, "rowcount", 0) or 0)
    if not n:
        return 0, []
    return n, [EventDraft("retention.purge_job_logs", actor_user_id=r.set_by, actor_org_id=r.org_id,
                          resource_type="organization", resource_id=r.org_id, resource_org_id=r.org_id,
                          request_id=f"retention:{r.id}",
                          details={"events": n, "days": r.days, "finished_before": cutoff.isoformat()})]


def purge_expired(factory: sessionmaker[Session], blobs: SealedBlobs, audit: Audit,
                  now: datetime | None = None) -> dict[str, int]:
    """Purge what every rule says has expired (one transaction per rule, with its audit events)."""
    now = now or utcnow()
    counts = {"dataset_versions": 0, "job_log_events": 0, "deferred": 0}
    with factory() as s:
        ids = list(s.scalars(select(RetentionRule.id).order_by(RetentionRule.id)))
    for rid in ids:
        with transaction(factory) as s:
            r = s.get(RetentionRule, rid)
            if r is None:
                continue
            if r.kind == "dataset_versions":
                done, deferred, events = _purge_versions(s, blobs, r, now)
                counts["dataset_versions"] += done
                counts["deferred"] += deferred
            else:
                n, events = _purge_job_logs(s, r, now)
                counts["job_log_events"] += n
            audit(s, events)
    return counts
