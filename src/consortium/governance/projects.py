"""Projects: a unit of collaboration between organizations.

An organization creates a project with a purpose and terms (the permissions members agree to
extend to it), invites other organizations, which accept or decline (admins or owners only).
A resource owner can grant a permission to the project instead of to one organization; every
*active* member then holds it, and only while it stays a member. Jobs, models and deployments
can live in a project; its members see them, and its audit view.

Names are unique per creating organization. A reference is a project id, ``org~name`` (or
``org/name`` in a body or query), or a bare ``name``: the caller's own organization's project of
that name first, else the single one its organization is a member of or invited to (several:
409 listing them). A project the caller's organization is not in does not exist for it (404).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from consortium.governance import names
from consortium.governance.identity import check_name, org_by_id, org_by_name
from consortium.governance.principal import Principal
from consortium.governance.roles import Permission, Role
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.identity import Organization
from consortium.store.tables.projects import Project, ProjectMember

ROLES = ("lead", "member")


class Seen(NamedTuple):
    """A project as the caller's organization sees it: the project and its own membership row."""

    project: Project
    member: ProjectMember


def _check_terms(terms: list[str]) -> list[str]:
    out = []
    for t in terms:
        try:
            out.append(Permission(t).value)
        except ValueError:
            raise InvalidInput(f"unknown permission {t!r} in terms",
                               hint="use metadata, compute, download or invoke") from None
    if not out:
        raise InvalidInput("terms must list at least one permission (metadata, compute, download, invoke)")
    return sorted(set(out))


def _check_quota(q: dict[str, Any] | None) -> dict[str, int]:
    q = q or {}
    bad = set(q) - {"per_minute", "per_day"}
    if bad:
        raise InvalidInput(f"unknown quota keys {sorted(bad)}", hint="use per_minute and per_day")
    for k, v in q.items():
        if not isinstance(v, int) or v < 1:
            raise InvalidInput(f"quota {k} must be a positive whole number; got {v!r}")
    return dict(q)


def create(session: Session, p: Principal, name: str, purpose: str, terms: list[str],
           default_quota: dict[str, Any] | None = None) -> Project:
    p.require(Role.admin, "creating projects")
    check_name(name, "project name")
    if session.scalar(select(Project).where(Project.created_by_org == p.org_id, Project.name == name)):
        raise Conflict(f"your organization already has a project named {name!r}", hint="pick another name")
    prj = Project(id=new_id("prj"), name=name, purpose=purpose, terms=_check_terms(terms),
                  default_quota=_check_quota(default_quota), created_by_org=p.org_id)
    session.add(prj)
    session.flush()
    session.add(ProjectMember(project_id=prj.id, org_id=p.org_id, role="lead", state="active",
                              joined_at=utcnow()))
    session.flush()
    return prj


def membership(session: Session, project_id: str, org_id: str) -> ProjectMember | None:
    return session.get(ProjectMember, (project_id, org_id))


def find(session: Session, ref: str) -> Project | None:
    """A project by id or qualified name (``org~name`` / ``org/name``), whoever may see it (no check)."""
    if ref.startswith("prj_"):
        prj = session.get(Project, ref)
        if prj is not None:
            return prj
    org, name = names.split_qualified(ref, "project")
    if org is None:
        return None
    return session.scalar(select(Project).join(Organization, Organization.id == Project.created_by_org)
                          .where(Organization.name == org, Project.name == name))


def _seen(m: ProjectMember | None) -> bool:
    return m is not None and m.state in ("active", "invited")


def visible(session: Session, p: Principal, ref: str) -> Seen:
    """The project ``ref`` names, if the caller's organization is a member or has a pending
    invitation; else 404 (the same answer whether or not it exists)."""
    prj = find(session, ref)
    if prj is None and names.split_qualified(ref, "project")[0] is None:
        rows = session.execute(select(Project, ProjectMember).join(
            ProjectMember, ProjectMember.project_id == Project.id).where(
            Project.name == ref.strip(), ProjectMember.org_id == p.org_id,
            ProjectMember.state.in_(["active", "invited"]))).all()
        own = next((r for r in rows if r[0].created_by_org == p.org_id), None)
        seen = [(ref_of(session, r[0]), r[0]) for r in rows]
        prj = names.pick_by_name("project", ref.strip(), own[0] if own else None, seen)
    m = membership(session, prj.id, p.org_id) if prj else None
    if prj is None or m is None or not _seen(m):
        raise NotFound(f"project {ref!r} not found among your organization's projects",
                       hint="list them with `consortium projects list`")
    return Seen(prj, m)


def list_seen(session: Session, p: Principal) -> list[Seen]:
    """The projects the caller's organization is a member of or invited to, by name."""
    return [Seen(prj, m) for prj, m in seen_listing(p).all(session)]


def seen_listing(p: Principal) -> Listing:
    """Items are ``(Project, ProjectMember)`` pairs; ``Seen(*item)`` wraps one."""
    return Listing(select(Project, ProjectMember).join(ProjectMember, ProjectMember.project_id == Project.id)
                   .where(ProjectMember.org_id == p.org_id, ProjectMember.state.in_(["active", "invited"])),
                   (Project.name, Project.id), entities=2)


def for_work(session: Session, p: Principal, ref: str, what: str) -> Project:
    """A project the caller's organization is an *active* member of, to put work in (jobs, models,
    grants): another organization's project -> 404, a pending invitation -> 403."""
    prj, m = visible(session, p, ref)
    require_active(m, what)
    return prj


def ref_of(session: Session, prj: Project) -> str:
    """The project's qualified reference, ``org~name``."""
    return names.qualified(org_by_id(session, prj.created_by_org).name, prj.name)


def require_active(m: ProjectMember, what: str = "this") -> None:
    if m.state != "active":
        raise PermissionDenied(f"your organization must accept the project's invitation before {what}")


def require_lead(p: Principal, m: ProjectMember, what: str) -> None:
    require_active(m, what)
    if m.role != "lead":
        raise PermissionDenied(f"{what} is for the project's lead organizations")
    p.require(Role.admin, what)


def update(session: Session, p: Principal, prj: Project, m: ProjectMember, *, purpose: str | None = None,
           default_quota: dict[str, Any] | None = None) -> Project:
    """Change the purpose or the default invoke quota (lead organizations' admins)."""
    require_lead(p, m, "changing the project")
    if purpose is not None:
        prj.purpose = purpose
    if default_quota is not None:
        prj.default_quota = _check_quota(default_quota)
    return prj


def invite(session: Session, p: Principal, prj: Project, m: ProjectMember, org_name: str) -> ProjectMember:
    require_lead(p, m, "inviting organizations")
    try:
        org = org_by_name(session, org_name)
    except NotFound:
        raise NotFound(f"organization {org_name!r} does not exist",
                       hint="list organizations with `consortium orgs list`") from None
    existing = membership(session, prj.id, org.id)
    if existing is not None and existing.state in ("active", "invited"):
        raise Conflict(f"{org_name} is already {'a member' if existing.state == 'active' else 'invited'}")
    if existing is not None:
        existing.state, existing.role, existing.invited_at, existing.ended_at = "invited", "member", utcnow(), None
        return existing
    pm = ProjectMember(project_id=prj.id, org_id=org.id, role="member", state="invited")
    session.add(pm)
    session.flush()
    return pm


def accept(session: Session, p: Principal, m: ProjectMember) -> ProjectMember:
    p.require(Role.admin, "accepting a project invitation")
    if m.state == "active":
        raise Conflict("your organization already accepted this invitation and is a member")
    if m.state != "invited":
        raise NotFound("no pending invitation for your organization")
    m.state, m.joined_at = "active", utcnow()
    return m


def decline(session: Session, p: Principal, m: ProjectMember) -> ProjectMember:
    p.require(Role.admin, "declining a project invitation")
    if m.state != "invited":
        raise Conflict("there is no pending invitation to decline" if m.state != "active"
                       else "your organization is already a member; leave the project instead")
    m.state, m.ended_at = "declined", utcnow()
    return m


def _leads(session: Session, project_id: str) -> int:
    return len(list(session.scalars(select(ProjectMember).where(
        ProjectMember.project_id == project_id, ProjectMember.role == "lead", ProjectMember.state == "active"))))


def leave(session: Session, p: Principal, prj: Project, m: ProjectMember) -> ProjectMember:
    p.require(Role.admin, "leaving a project")
    if m.state != "active":
        raise Conflict(f"your organization is not a member of {prj.name} (invitation {m.state})",
                       hint="decline the invitation instead")
    if m.role == "lead" and _leads(session, prj.id) <= 1:
        raise Conflict("your organization is the project's last lead",
                       hint="make another member lead first")
    m.state, m.ended_at = "left", utcnow()
    return m


def remove(session: Session, p: Principal, prj: Project, lead: ProjectMember, org_name: str) -> ProjectMember:
    require_lead(p, lead, "removing members")
    org = org_by_name(session, org_name)
    target = membership(session, prj.id, org.id)
    if target is None or target.state not in ("active", "invited"):
        raise NotFound(f"{org_name} is not a member of {prj.name}")
    if target.role == "lead" and target.state == "active" and _leads(session, prj.id) <= 1:
        raise Conflict("cannot remove the project's last lead", hint="make another member lead first")
    target.state, target.ended_at = "removed", utcnow()
    return target


def update_member(session: Session, p: Principal, prj: Project, lead: ProjectMember, org_name: str,
                  role: str | None, quota: dict[str, Any] | None) -> ProjectMember:
    require_lead(p, lead, "changing members")
    target = membership(session, prj.id, org_by_name(session, org_name).id)
    if target is None or target.state != "active":
        raise NotFound(f"{org_name} is not an active member of {prj.name}")
    if role is not None:
        if role not in ROLES:
            raise InvalidInput(f"project role must be lead or member; got {role!r}")
        if target.role == "lead" and role != "lead" and _leads(session, prj.id) <= 1:
            raise Conflict("cannot demote the project's last lead")
        target.role = role
    if quota is not None:
        target.quota = _check_quota(quota) or None
    return target


def active_project_ids(session: Session, org_id: str) -> list[str]:
    return list(session.scalars(select(ProjectMember.project_id).where(
        ProjectMember.org_id == org_id, ProjectMember.state == "active")))


def check_grant(session: Session, p: Principal, project_id: str, permission: str) -> None:
    """A grant to a project: the granting organization must be an active member, within the terms."""
    prj = session.get(Project, project_id)
    m = membership(session, project_id, p.org_id) if prj else None
    if prj is None or m is None or not _seen(m):
        raise NotFound("project not found among your organization's projects")
    require_active(m, "granting to the project")
    if permission not in prj.terms:
        raise InvalidInput(f"{permission!r} is outside the terms of project {prj.name}, which members "
                           f"agreed to extend only {', '.join(prj.terms)}",
                           hint="grant a permission within the terms, or agree new terms in the project")


def quota_for(session: Session, project_id: str, org_id: str) -> dict[str, Any]:
    prj = session.get(Project, project_id)
    m = membership(session, project_id, org_id)
    if prj is None or m is None:
        return {}
    return dict(m.quota or prj.default_quota or {})


def members_view(session: Session, prj: Project) -> list[dict[str, Any]]:
    rows = session.scalars(select(ProjectMember).where(ProjectMember.project_id == prj.id)
                           .order_by(ProjectMember.invited_at))
    return [{"org": org_by_id(session, m.org_id).name, "role": m.role, "state": m.state, "quota": m.quota,
             "invited_at": m.invited_at, "joined_at": m.joined_at, "ended_at": m.ended_at} for m in rows]


def summary(session: Session, seen: Seen) -> dict[str, Any]:
    """A project as a list shows it (``ref``: the ``org~name`` that names it unambiguously)."""
    prj, m = seen
    return {"id": prj.id, "name": prj.name, "ref": ref_of(session, prj), "purpose": prj.purpose,
            "terms": prj.terms, "your_role": m.role, "your_state": m.state}


def view(session: Session, prj: Project, m: ProjectMember | None = None) -> dict[str, Any]:
    creator = org_by_id(session, prj.created_by_org).name
    return {"id": prj.id, "name": prj.name, "ref": names.qualified(creator, prj.name),
            "purpose": prj.purpose, "terms": prj.terms, "default_quota": prj.default_quota, "created_by": creator,
            "created_at": prj.created_at, "your_role": m.role if m else None,
            "your_state": m.state if m else None, "members": members_view(session, prj)}

