"""Demo step for ``consortium up``: the three demo organizations form the project
``breast-cancer-study`` (the hospital leads; the clinic and the lab accepted), and each grants the
project ``compute`` on its own ``breast-cancer`` partition. Idempotent.

Run by ``consortium.demo.seed_demo`` (``consortium/demo/__init__.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.demo.orgs import DEMO_ORGS, demo_owner
from consortium.errors import Conflict
from consortium.governance import grants, projects
from consortium.governance.audit import EventDraft
from consortium.services import Services
from consortium.store.tables.projects import Project

PROJECT = "breast-cancer-study"


def seed_project(svc: Services, session: Session, out: dict[str, Any]) -> None:
    lead_name = DEMO_ORGS[0][0]
    events: list[EventDraft] = []
    lead = demo_owner(session, lead_name, "demo")
    prj = session.scalar(select(Project).where(Project.created_by_org == lead.org_id, Project.name == PROJECT))
    if prj is None:
        prj = projects.create(session, lead, PROJECT, "Pool three sites' breast-cancer records to train a "
                              "screening model none of them could train alone; each site keeps its rows.",
                              ["metadata", "compute", "invoke"], {"per_minute": 120, "per_day": 10000})
        events.append(EventDraft("demo.create_project", actor_user_id=lead.user_id, actor_org_id=lead.org_id,
                                 resource_type="project", resource_id=prj.id, project_id=prj.id))
    datasets = svc.resource_types.get("dataset")
    for name, _, _ in DEMO_ORGS:
        p = demo_owner(session, name, "demo")
        m = projects.membership(session, prj.id, p.org_id)
        if m is None:
            lead = demo_owner(session, lead_name, "demo")
            lead_m = projects.membership(session, prj.id, lead.org_id)
            if lead_m is None:  # the lead made the project: a database without it is not the demo's
                raise Conflict(f"the demo project {PROJECT!r} has no membership of its lead {lead_name!r}",
                               hint="start with a fresh CONSORTIUM_HOME for the demo")
            m = projects.invite(session, lead, prj, lead_m, name)
        if m.state == "invited":
            projects.accept(session, p, m)
            events.append(EventDraft("demo.accept_project", actor_user_id=p.user_id, actor_org_id=p.org_id,
                                     resource_type="project", resource_id=prj.id, project_id=prj.id))
        ref = f"{name}/breast-cancer"
        found = datasets.resolve(session, ref)
        if found is None:
            continue
        have = [g for g in grants.list_grants(session, p, "given")
                if g.resource_id == found[0] and g.grantee_project_id == prj.id and g.revoked_at is None]
        if not have:
            g = grants.create_grant(session, p, datasets, ref, "compute", grantee_project_id=prj.id)
            events.append(EventDraft("demo.grant_to_project", actor_user_id=p.user_id, actor_org_id=p.org_id,
                                     resource_type="dataset", resource_id=g.resource_id,
                                     resource_org_id=p.org_id, project_id=prj.id, details={"grant": g.id}))
    svc.audit_in(session, events)
    out["project"] = PROJECT
