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
