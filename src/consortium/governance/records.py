"""An organization's record of processing activities, in the manner of GDPR Art. 30: which partner
used which of its datasets, when, in which job and project, for which purpose, with which privacy
settings (differential privacy's target and spent epsilon, secure aggregation).

Built from what the hub already keeps, never from a second bookkeeping that could drift: jobs
(``Job.resolved`` names each dataset and version a job was admitted to, with its owner), their
projects (the purpose partners agreed to), the privacy ledger (epsilon actually spent) and the
audit chain (downloads of a version's file by another organization, which no job shows).

One row per (job, dataset) and per download; ``rows`` returns them oldest first, ``to_csv`` writes
them with the header ``COLUMNS``.

>>> to_csv([{"job_id": "job_1", "dataset": "org/ds", "epsilon_spent": 0.5}]).splitlines()[1][:22]
'job,job_1,,,,,,,org/ds'
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from consortium.store.tables.audit import AuditEvent
from consortium.store.tables.data import Dataset
from consortium.store.tables.federation import PrivacySpend
from consortium.store.tables.identity import Organization
from consortium.store.tables.jobs import Job
from consortium.store.tables.projects import Project

COLUMNS = ("activity", "job_id", "job_name", "job_kind", "job_state", "partner", "partner_is_owner",
           "project", "dataset", "dataset_version", "purpose", "submitted_at", "started_at", "finished_at",
           "differential_privacy", "epsilon_target", "delta", "epsilon_spent", "secure_aggregation",
           "rounds", "model", "model_version")
DIRECT_ACCESS = ("download_version",)  # audit actions that hand another organization a version's rows


def _privacy(recipe: dict[str, Any]) -> dict[str, Any]:
    """The privacy settings a recipe asked for (federated DP and secure aggregation; DP-SGD in training)."""
    fed = recipe.get("federated") or {}
    dp = fed.get("dp") or (recipe.get("train") or {}).get("dp") or None
    return {"differential_privacy": dp is not None,
            "epsilon_target": dp.get("epsilon") if isinstance(dp, dict) else None,
            "delta": dp.get("delta") if isinstance(dp, dict) else None,
            "secure_aggregation": bool(fed.get("secure_aggregation")) if fed else False,
            "rounds": fed.get("rounds") if fed else None}


def _job_rows(session: Session, org: Organization) -> Iterator[dict[str, Any]]:
    # a text prefilter on the org's id narrows the scan to jobs that name it (JSON has no portable index)
    q = (select(Job).where(cast(Job.resolved, String).like(f"%{org.id}%"))
         .order_by(Job.created_at, Job.id).execution_options(yield_per=500))
    names: dict[str, str] = {}
    projects: dict[str, Project | None] = {}

    def org_name(oid: str) -> str:
        if oid not in names:
            names[oid] = session.scalar(select(Organization.name).where(Organization.id == oid)) or oid
        return names[oid]

    for job in session.scalars(q):
        mine = [d for d in (job.resolved or {}).get("datasets") or [] if d.get("owner_org_id") == org.id]
        if not mine:
            continue
        if job.project_id and job.project_id not in projects:
            projects[job.project_id] = session.get(Project, job.project_id)
        prj = projects.get(job.project_id) if job.project_id else None
        recipe = job.recipe or {}
        result = job.result or {}
        spent = {s.dataset_id: s.epsilon for s in session.scalars(select(PrivacySpend)
                                                                  .where(PrivacySpend.job_id == job.id))}
        for d in mine:
            yield {"activity": "job", "job_id": job.id, "job_name": job.name, "job_kind": job.kind,
                   "job_state": job.state, "partner": org_name(job.org_id), "partner_is_owner": job.org_id == org.id,
                   "project": prj.name if prj else None, "dataset": d.get("dataset"),
                   "dataset_version": d.get("version"),
                   "purpose": recipe.get("purpose") or (prj.purpose if prj else None),
                   "submitted_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
                   **_privacy(recipe), "epsilon_spent": spent.get(d.get("dataset_id", "")),
                   "model": result.get("model"), "model_version": result.get("version")}


def _access_rows(session: Session, org: Organization) -> Iterator[dict[str, Any]]:
    q = (select(AuditEvent).where(AuditEvent.resource_org_id == org.id, AuditEvent.resource_type == "dataset",
                                  AuditEvent.action.in_(DIRECT_ACCESS), AuditEvent.outcome == "ok")
         .order_by(AuditEvent.seq).execution_options(yield_per=500))
    names: dict[str, str] = {}
    for ev in session.scalars(q):
        if ev.actor_org_id == org.id or ev.actor_org_id is None:
            continue
        oid = ev.actor_org_id
        if oid not in names:
            names[oid] = session.scalar(select(Organization.name).where(Organization.id == oid)) or oid
        ds = session.get(Dataset, ev.resource_id or "")
        details = json.loads(ev.details or "{}")
        yield {"activity": "download", "job_id": None, "partner": names[ev.actor_org_id], "partner_is_owner": False,
               "dataset": f"{org.name}/{ds.name}" if ds else ev.resource_id, "dataset_version": details.get("version"),
               "submitted_at": ev.time, "finished_at": ev.time, "differential_privacy": False,
               "secure_aggregation": False}


def rows(session: Session, org: Organization, *, include_own: bool = True) -> list[dict[str, Any]]:
    """Every processing of ``org``'s datasets, oldest first (``include_own``: its own jobs too)."""
    out = [r for r in _job_rows(session, org) if include_own or not r["partner_is_owner"]]
    out += list(_access_rows(session, org))
    out.sort(key=lambda r: (r["submitted_at"].isoformat() if r.get("submitted_at") else "", r.get("job_id") or ""))
    return [{c: r.get(c) for c in COLUMNS} for r in out]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_csv(items: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV with the header ``COLUMNS`` (empty cells for what does not apply)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in items:
        w.writerow([_cell(r.get(c)) if c != "activity" else (r.get(c) or "job") for c in COLUMNS])
    return buf.getvalue()
