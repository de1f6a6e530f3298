"""Projects: create, invite, accept/decline, leave, manage members, audit view and report."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import select

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Svc, Viewer
from consortium.api.routes.audit import EventOut
from consortium.api.schemas import In, NonNegInt64, PosInt64
from consortium.governance import projects
from consortium.governance.roles import Role
from consortium.store.tables.audit import AuditEvent
from consortium.store.tables.projects import Project, ProjectMember

router = APIRouter(prefix="/projects", tags=["projects"])


class Quota(In):
    per_minute: PosInt64 | None = None
    per_day: PosInt64 | None = None

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ProjectIn(In):
    name: str = Field(min_length=3, max_length=40)
    purpose: str = Field(min_length=1, max_length=2000)
    terms: list[str] = Field(description="permissions members extend to the project: metadata, compute, "
                                         "download, invoke")
    default_quota: Quota | None = None


class ProjectPatch(In):
    purpose: str | None = Field(default=None, max_length=2000)
    default_quota: Quota | None = None


class InviteIn(In):
    org: str = Field(max_length=40)


class MemberPatch(In):
    role: str | None = Field(default=None, pattern="^(lead|member)$")
    quota: Quota | None = None


def project_of_caller(project: str, p: Caller, session: SessionDep, ctx: Ctx) -> tuple[Project, ProjectMember]:
    prj, m = projects.visible(session, p, project)
    ctx.resource("project", prj.id, prj.created_by_org, prj.id)
    return prj, m


ProjectDep = Annotated[tuple[Project, ProjectMember], Depends(project_of_caller)]


@router.post("", status_code=201)
@rule("org", Role.admin)
def create_project(body: ProjectIn, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Create a project; your organization becomes its lead."""
    prj = projects.create(session, p, body.name, body.purpose, body.terms,
                          body.default_quota.as_dict() if body.default_quota else None)
    ctx.resource("project", prj.id, p.org_id, prj.id)
    ctx.details = {"name": prj.name, "terms": prj.terms}
    return projects.view(session, prj, projects.membership(session, prj.id, p.org_id))


@router.get("")
@rule("org")
def list_projects(p: Viewer, session: SessionDep) -> list[dict[str, Any]]:
    """Projects your organization is in or invited to (``ref``: the ``org~name`` that names each one
    unambiguously)."""
    return [{"id": prj.id, "name": prj.name, "ref": projects.ref_of(session, prj), "purpose": prj.purpose,
             "terms": prj.terms, "your_role": m.role, "your_state": m.state}
            for prj, m in projects.list_seen(session, p)]


@router.get("/{project}")
@rule("resource")
def get_project(pm: ProjectDep, session: SessionDep) -> dict[str, Any]:
    """A project's purpose, terms, quotas and members."""
    return projects.view(session, pm[0], pm[1])


@router.patch("/{project}")
@rule("resource", Role.admin)
def update_project(pm: ProjectDep, p: Admin, body: ProjectPatch, session: SessionDep) -> dict[str, Any]:
    """Change the purpose or the default invoke quota (lead organizations)."""
    prj, m = pm
    projects.require_lead(p, m, "changing the project")
    if body.purpose is not None:
        prj.purpose = body.purpose
    if body.default_quota is not None:
        prj.default_quota = body.default_quota.as_dict()
    return projects.view(session, prj, m)


@router.post("/{project}/invitations")
@rule("resource", Role.admin)
def invite_org(pm: ProjectDep, p: Admin, body: InviteIn, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Invite another organization (lead organizations)."""
    projects.invite(session, p, pm[0], pm[1], body.org)
    ctx.details = {"invited": body.org}
    return projects.view(session, pm[0], pm[1])


@router.post("/{project}/accept")
@rule("resource", Role.admin)
def accept_invitation(pm: ProjectDep, p: Admin, session: SessionDep) -> dict[str, Any]:
    """Accept your organization's invitation (admins or owners of the invited organization)."""
    projects.accept(session, p, pm[1])
    return projects.view(session, pm[0], pm[1])


@router.post("/{project}/decline")
@rule("resource", Role.admin)
def decline_invitation(pm: ProjectDep, p: Admin, session: SessionDep) -> dict[str, Any]:
    projects.decline(session, p, pm[1])
    return {"project": pm[0].name, "state": pm[1].state}


@router.post("/{project}/leave")
@rule("resource", Role.admin)
def leave_project(pm: ProjectDep, p: Admin, session: SessionDep) -> dict[str, Any]:
    """Leave the project: grants to it stop applying to your organization at once."""
    projects.leave(session, p, pm[0], pm[1])
    return {"project": pm[0].name, "state": pm[1].state}


@router.patch("/{project}/members/{org}")
@rule("resource", Role.admin)
def update_member(pm: ProjectDep, org: str, p: Admin, body: MemberPatch, session: SessionDep,
                  ctx: Ctx) -> dict[str, Any]:
    """Make a member lead, or set its own invoke quota (lead organizations)."""
    projects.update_member(session, p, pm[0], pm[1], org, body.role,
                           body.quota.as_dict() if body.quota else None)
    ctx.details = {"member": org, "role": body.role}
    return projects.view(session, pm[0], pm[1])


@router.delete("/{project}/members/{org}")
@rule("resource", Role.admin)
def remove_member(pm: ProjectDep, org: str, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Remove a member organization (lead organizations); its access through the project ends at once."""
    projects.remove(session, p, pm[0], pm[1], org)
    ctx.details = {"removed": org}
    return projects.view(session, pm[0], pm[1])


@router.get("/{project}/audit", response_model=list[EventOut])
@rule("resource")
def project_audit(pm: ProjectDep, p: Viewer, session: SessionDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  since_seq: Annotated[NonNegInt64, Query()] = 0) -> list[EventOut]:
    """Every event that concerns the project's resources, visible to every member organization."""
    rows = session.scalars(select(AuditEvent).where(AuditEvent.project_id == pm[0].id,
                                                    AuditEvent.seq > since_seq)
                           .order_by(AuditEvent.seq.desc()).limit(limit))
    return [EventOut(**{k: getattr(e, k) for k in EventOut.model_fields if k != "details"},
                     details=json.loads(e.details or "{}")) for e in rows]


@router.get("/{project}/report")
@rule("resource")
def project_report(pm: ProjectDep, session: SessionDep, svc: Svc) -> dict[str, Any]:
    """Who contributed which datasets, which jobs ran, which models exist, who called which deployment."""
    from consortium.governance.project_report import report

    return report(session, pm[0], svc.resource_types)


