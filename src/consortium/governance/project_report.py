"""A project's report: who contributed which datasets, which jobs ran, which models exist, and who
called which deployment how often. Reads across stages' tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.governance.grants import ResourceTypes
from consortium.governance.identity import org_by_id
from consortium.governance.projects import members_view
from consortium.store.tables.grants import Grant
from consortium.store.tables.jobs import Job
from consortium.store.tables.projects import Project


def report(session: Session, prj: Project, types: ResourceTypes) -> dict[str, Any]:
    names: dict[str, str] = {}

    def org(oid: str | None) -> str | None:
        if oid is None:
            return None
        if oid not in names:
            names[oid] = org_by_id(session, oid).name
        return names[oid]

    grants = session.scalars(select(Grant).where(Grant.grantee_project_id == prj.id).order_by(Grant.created_at))
    contributions = []
    for g in grants:
        contributions.append({"organization": org(g.owner_org_id), "resource_type": g.resource_type,
                              "resource": types.describe(session, g.resource_type, g.resource_id),
                              "permission": g.permission, "granted_at": g.created_at,
                              "state": "revoked" if g.revoked_at else "active"})
    jobs = [{"id": j.id, "name": j.name, "kind": j.kind, "state": j.state, "organization": org(j.org_id),
             "created_at": j.created_at, "result": {k: v for k, v in (j.result or {}).items()
                                                    if k in ("model", "version", "metrics")}}
            for j in session.scalars(select(Job).where(Job.project_id == prj.id).order_by(Job.created_at))]
    return {"project": prj.name, "purpose": prj.purpose, "terms": prj.terms,
            "members": members_view(session, prj), "contributions": contributions, "jobs": jobs,
            "models": _models(session, prj, org), "deployment_usage": _usage(session, prj, org)}


def _models(session: Session, prj: Project, org: Any) -> list[dict[str, Any]]:
    from sqlalchemy import func

    from consortium.store.tables.registry import ModelVersion, RegisteredModel

    rows = session.scalars(select(RegisteredModel).where(RegisteredModel.project_id == prj.id)
                           .order_by(RegisteredModel.name))
    out = []
    for m in rows:
        latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == m.id))
        v = session.scalar(select(ModelVersion).where(ModelVersion.model_id == m.id, ModelVersion.version == latest))
        out.append({"model": f"{org(m.org_id)}/{m.name}", "latest_version": latest,
                    "organizations": (v.lineage or {}).get("organizations", []) if v else [],
                    "accuracy": (v.metrics or {}).get("accuracy") if v else None})
    return out


def _usage(session: Session, prj: Project, org: Any) -> list[dict[str, Any]]:
    """Who called which deployment how often: deployments of project models, or granted to the project."""
    from sqlalchemy import func, or_

    from consortium.store.tables.registry import Deployment, DeploymentUsage, RegisteredModel

    granted = select(Grant.resource_id).where(Grant.grantee_project_id == prj.id,
                                              Grant.resource_type == "deployment")
    in_project = select(RegisteredModel.id).where(RegisteredModel.project_id == prj.id)
    deps = {d.id: d for d in session.scalars(select(Deployment).where(
        or_(Deployment.id.in_(granted), Deployment.model_id.in_(in_project))))}
    if not deps:
        return []
    rows = session.execute(select(DeploymentUsage.deployment_id, DeploymentUsage.caller_org_id,
                                  func.sum(DeploymentUsage.count), func.sum(DeploymentUsage.errors))
                           .where(DeploymentUsage.deployment_id.in_(list(deps)))
                           .group_by(DeploymentUsage.deployment_id, DeploymentUsage.caller_org_id))
    return [{"deployment": deps[d].name, "caller": org(c), "calls": int(n or 0), "errors": int(e or 0)}
            for d, c, n, e in rows]
