"""Retention periods (``consortium.data.retention``): a dataset's versions, the organization's job
logs; deployments' prediction logs keep their monitoring ``retention_days``. The purge runs on a
schedule in the job workers; operators can run it now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from consortium.api.access import rule
from consortium.api.deps import Admin, Ctx, Operator, SessionDep, Svc, Viewer
from consortium.api.routes.datasets import Deletable
from consortium.data import catalog, retention
from consortium.governance.roles import Role
from consortium.monitoring.config import load_settings
from consortium.monitoring.recorder import purge_prediction_logs
from consortium.store.tables.registry import Deployment

router = APIRouter(tags=["retention"])


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int | None = Field(None, ge=1, le=retention.MAX_DAYS, description="null: keep forever")


def _view(kind: str, target: str | None, days: int | None) -> dict[str, Any]:
    return {"kind": kind, "target": target, "days": days}


@router.put("/datasets/{org}/{dataset}/retention")
@rule("resource", Role.admin)
def set_dataset_retention(ds: Deletable, body: RetentionIn, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Keep each version of your dataset ``days`` days after its upload; expired ones are purged
    (row and blob) on the workers' schedule, each purge audited."""
    retention.set_rule(session, p, "dataset_versions", ds.id, body.days)
    ctx.details = {"days": body.days}
    return _view("dataset_versions", catalog.full_name(session, ds), body.days)


@router.put("/retention/job-logs")
@rule("org", Role.admin)
def set_job_log_retention(body: RetentionIn, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Keep your organization's job logs (progress and log lines) ``days`` days after each job ends."""
    ctx.resource("organization", p.org_id, p.org_id)
    retention.set_rule(session, p, "job_logs", "", body.days)
    ctx.details = {"days": body.days}
    return _view("job_logs", None, body.days)


@router.get("/retention")
@rule("org")
def list_retention(p: Viewer, session: SessionDep) -> dict[str, Any]:
    """Your organization's retention periods, the deployments' prediction logs included."""
    items = retention.rules_of(session, p.org_id)
    for d in session.scalars(select(Deployment).where(Deployment.org_id == p.org_id).order_by(Deployment.name)):
        days = load_settings(session, d.id)[0].retention_days
        items.append({"kind": "prediction_log", "target": d.name, "days": days})
    return {"items": items}


@router.post("/retention/purge")
@rule("operator")
def purge_now(p: Operator, session: SessionDep, svc: Svc, ctx: Ctx) -> dict[str, Any]:
    """Purge what has expired now, as the schedule would (hub operators)."""
    session.commit()  # the purge commits in its own transactions: end this one first (SQLite's one writer)
    counts = retention.purge_expired(svc.session_factory, svc.blobs, svc.audit_in)
    rows, events = purge_prediction_logs(session)
    ctx.extra.extend(events)
    counts["prediction_log_rows"] = rows
    ctx.details = counts
    return counts
