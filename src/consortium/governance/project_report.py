"""A project's report: who contributed which datasets, which jobs ran, which models exist, and who
called which deployment how often. Reads across stages; each section is skipped if its stage is
absent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.governance.grants import RESOURCE_TYPES
from consortium.governance.identity import org_by_id
from consortium.governance.projects import members_view
from consortium.store.tables.grants import Grant
from consortium.store.tables.jobs import Job
from consortium.store.tables.projects import Project


def report(session: Session, prj: Project) -> dict[str, Any]:
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
        rt = RESOURCE_TYPES.get(g.resource_type)
        contributions.append({"organization": org(g.owner_org_id), "resource_type": g.resource_type,
                              "resource": rt.describe(session, g.resource_id) if rt else g.resource_id,
                              "permission": g.permission, "granted_at": g.created_at,
                              "state": "revoked" if g.revoked_at else "active"})
    jobs = [{"id": j.id, "name": j.name, "kind": j.kind, "state": j.state, "organization": org(j.org_id),
             "created_at": j.created_at, "result": {k: v for k, v in (j.result or {}).items()
                                                    if k in ("model", "version", "metrics")}}
            for j in session.scalars(select(Job).where(Job.project_id == prj.id).order_by(Job.created_at))]
    out: dict[str, Any] = {"project": prj.name, "purpose": prj.purpose, "terms": prj.terms,
                           "members": members_view(session, prj), "contributions": contributions,
                           "jobs": jobs, "models": [], "deployment_usage": []}
    for section, fn in _SECTIONS.items():
        try:
            out[section] = fn(session, prj, org)
        except Exception as e:  # a stage's section must not break the whole report
            out[section] = {"error": str(e)[:200]}
    return out


_SECTIONS: dict[str, Any] = {}


def section(name: str):  # type: ignore[no-untyped-def]
    """Stages register report sections: fn(session, project, org_name_of) -> JSON."""
    def deco(fn):  # type: ignore[no-untyped-def]
        _SECTIONS[name] = fn
        return fn
    return deco


@section("models")
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


@section("deployment_usage")
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
