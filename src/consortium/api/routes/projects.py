"""Projects: create, invite, accept/decline, leave, manage members, audit view and report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from consortium.api.access import rule
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas import NonNegInt64
from consortium.api.schemas.audit import AuditEventPublic
from consortium.api.schemas.projects import (
    ProjectCreate,
    ProjectInvite,
    ProjectMembership,
    ProjectMemberUpdate,
    ProjectPublic,
    ProjectReport,
    ProjectSummary,
    ProjectUpdate,
)
from consortium.governance import audit, projects
from consortium.governance.projects import Seen
from consortium.governance.roles import Role

router = APIRouter(prefix="/projects", tags=["projects"])


def project_of_caller(project: str, p: Caller, session: SessionDep, ctx: Ctx) -> Seen:
    seen = projects.visible(session, p, project)
    ctx.resource("project", seen.project.id, seen.project.created_by_org, seen.project.id)
    return seen


ProjectDep = Annotated[Seen, Depends(project_of_caller)]


@router.post("", status_code=201, response_model=ProjectPublic)
@rule("org", Role.admin)
def create_project(body: ProjectCreate, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Create a project; your organization becomes its lead."""
    prj = projects.create(session, p, body.name, body.purpose, body.terms,
                          body.default_quota.as_dict() if body.default_quota else None)
    ctx.resource("project", prj.id, p.org_id, prj.id)
    ctx.details = {"name": prj.name, "terms": prj.terms}
    return projects.view(session, prj, projects.membership(session, prj.id, p.org_id))


@router.get("", response_model=Paged[ProjectSummary])
@rule("org")
def list_projects(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """Projects your organization is in or invited to, by name (``ref``: the ``org~name`` that
    names each one unambiguously)."""
    found = projects.seen_listing(p).page(session, page.after, page.limit)
    return page.map(found, lambda row: projects.summary(session, Seen(*row)))


@router.get("/{project}", response_model=ProjectPublic)
@rule("resource")
def get_project(pm: ProjectDep, session: SessionDep) -> dict[str, Any]:
    """A project's purpose, terms, quotas and members."""
    return projects.view(session, *pm)


@router.patch("/{project}", response_model=ProjectPublic)
@rule("resource", Role.admin)
def update_project(pm: ProjectDep, p: Admin, body: ProjectUpdate, session: SessionDep) -> dict[str, Any]:
    """Change the purpose or the default invoke quota (lead organizations)."""
    projects.update(session, p, *pm, purpose=body.purpose,
                    default_quota=body.default_quota.as_dict() if body.default_quota is not None else None)
    return projects.view(session, *pm)


@router.post("/{project}/invitations", response_model=ProjectPublic)
@rule("resource", Role.admin)
def invite_org(pm: ProjectDep, p: Admin, body: ProjectInvite, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Invite another organization (lead organizations)."""
    projects.invite(session, p, *pm, body.org)
    ctx.details = {"invited": body.org}
    return projects.view(session, *pm)


@router.post("/{project}/accept", response_model=ProjectPublic)
@rule("resource", Role.admin)
def accept_invitation(pm: ProjectDep, p: Admin, session: SessionDep) -> dict[str, Any]:
    """Accept your organization's invitation (admins or owners of the invited organization)."""
    projects.accept(session, p, pm.member)
    return projects.view(session, *pm)


@router.post("/{project}/decline", response_model=ProjectMembership)
@rule("resource", Role.admin)
def decline_invitation(pm: ProjectDep, p: Admin, session: SessionDep) -> ProjectMembership:
    projects.decline(session, p, pm.member)
    return ProjectMembership(project=pm.project.name, state=pm.member.state)


@router.post("/{project}/leave", response_model=ProjectMembership)
@rule("resource", Role.admin)
def leave_project(pm: ProjectDep, p: Admin, session: SessionDep) -> ProjectMembership:
    """Leave the project: grants to it stop applying to your organization at once."""
    projects.leave(session, p, *pm)
    return ProjectMembership(project=pm.project.name, state=pm.member.state)


@router.patch("/{project}/members/{org}", response_model=ProjectPublic)
@rule("resource", Role.admin)
def update_member(pm: ProjectDep, org: str, p: Admin, body: ProjectMemberUpdate, session: SessionDep,
                  ctx: Ctx) -> dict[str, Any]:
    """Make a member lead, or set its own invoke quota (lead organizations)."""
    projects.update_member(session, p, *pm, org, body.role, body.quota.as_dict() if body.quota else None)
    ctx.details = {"member": org, "role": body.role}
    return projects.view(session, *pm)


@router.delete("/{project}/members/{org}", response_model=ProjectPublic)
@rule("resource", Role.admin)
def remove_member(pm: ProjectDep, org: str, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Remove a member organization (lead organizations); its access through the project ends at once."""
    projects.remove(session, p, *pm, org)
    ctx.details = {"removed": org}
    return projects.view(session, *pm)


@router.get("/{project}/audit", response_model=Paged[AuditEventPublic])
@rule("resource")
def project_audit(pm: ProjectDep, p: Viewer, session: SessionDep, page: PageDep,
                  since_seq: Annotated[NonNegInt64, Query()] = 0) -> dict[str, Any]:
    """Every event that concerns the project's resources (newest first), visible to every member
    organization."""
    return page.out(audit.events_for_project(pm.project.id, since_seq=since_seq).page(session, page.after, page.limit))


@router.get("/{project}/report", response_model=ProjectReport)
@rule("resource")
def project_report(pm: ProjectDep, session: SessionDep, svc: Svc) -> dict[str, Any]:
    """Who contributed which datasets, which jobs ran, which models exist, who called which deployment."""
    from consortium.governance.project_report import report

    return report(session, pm.project, svc.resource_types)
