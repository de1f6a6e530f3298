"""Deployments: named endpoints serving a registered model, pinned to a version or following an alias.

A deployment belongs to the model's organization. Its owner shares it with other organizations
through a grant of ``invoke`` (resource type ``deployment``), optionally with a quota
``limits={"per_minute": n, "per_day": m}``, or by placing the model in a project whose terms
include ``invoke``.

Names are unique per organization, so a name reveals nothing about other organizations. A
reference (a path segment such as ``/v2/models/{name}``, or a body field) is a deployment id,
``org~name`` (``org/name`` outside a path), or a bare ``name``: the caller's own organization's
deployment first, else the single one it may call (several: 409 listing their ``org~name``).
Deployment and organization names never contain ``~``, so ``org~name`` is one path segment.

What a new deployment serves (a model, and a pinned version or an alias) is chosen and
authorized by the registry (``consortium.registry.models.to_serve``); this module stores and finds
deployments and never imports the registry.

>>> check_deployment_name("digits-prod")
'digits-prod'
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from consortium.governance import grants, names
from consortium.governance.identity import org_by_id
from consortium.governance.names import NameRule
from consortium.governance.principal import Principal
from consortium.governance.roles import Permission, Role
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import Organization
from consortium.store.tables.registry import Deployment, ModelAlias, ModelVersion, RegisteredModel

DEPLOYMENT_NAME = NameRule("deployment name", re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}[a-z0-9]$"),
                           "use 3-64 lowercase letters, digits, '_' and '-', starting and ending with a "
                           "letter or digit")
DEPLOYMENT_NAME_RE = DEPLOYMENT_NAME.regex
check_deployment_name = DEPLOYMENT_NAME.check


def resolve_version(session: Session, d: Deployment) -> ModelVersion:
    """The version a deployment serves now (its pinned version, or where its alias points)."""
    if d.version_id is not None:
        v = session.get(ModelVersion, d.version_id)
    else:
        a = session.get(ModelAlias, (d.model_id, d.alias))
        v = session.get(ModelVersion, a.version_id) if a else None
    if v is None:
        raise NotFound(f"deployment {d.name!r} follows alias {d.alias!r}, which points nowhere",
                       hint="set the alias again with `consortium models alias`")
    return v


def create_deployment(session: Session, p: Principal, name: str, model: RegisteredModel, *,
                      version_id: str | None = None, alias: str | None = None,
                      description: str = "") -> Deployment:
    """Serve ``model`` under ``name``, pinned to ``version_id`` or following ``alias`` (exactly one).

    The caller chooses and authorizes them (``consortium.registry.models.to_serve``: another
    organization's model is 404, 403 where a project lets the caller read it)."""
    p.require(Role.member, "deploying a model")
    check_deployment_name(name)
    if (version_id is None) == (alias is None):
        raise InvalidInput("a deployment serves one pinned version or follows one alias",
                           hint="give a version or an alias, not both")
    if model.org_id != p.org_id:
        raise PermissionDenied("only the model's owner organization may deploy it")
    if session.scalar(select(Deployment.id).where(Deployment.org_id == p.org_id,
                                                  Deployment.name == name)) is not None:
        raise Conflict(f"your organization already has a deployment named {name!r}",
                       hint="pick another name, or undeploy the old one first")
    d = Deployment(id=new_id("dep"), name=name, org_id=model.org_id, model_id=model.id, version_id=version_id,
                   alias=alias, description=description, created_by=p.user_id)
    session.add(d)
    session.flush()
    return d


def not_found(ref: str) -> NotFound:
    """The one answer for a deployment the caller may not see, whether or not it exists."""
    return NotFound(f"deployment {ref!r} not found",
                    hint="list the deployments you can call with `consortium deployments list`")


def find_deployment(session: Session, ref: str) -> Deployment | None:
    """By id or qualified name (``org~name`` / ``org/name``), whoever may see it (no check)."""
    if ref.startswith("dep_"):
        d = session.get(Deployment, ref)
        if d is not None:
            return d
    org, name = names.split_qualified(ref, "deployment")
    if org is None:
        return None
    return session.scalar(select(Deployment).join(Organization, Organization.id == Deployment.org_id)
                          .where(Organization.name == org, Deployment.name == name))


def project_access(session: Session, p: Principal, d: Deployment) -> str | None:
    """The project through which the caller may invoke ``d`` (its model lives in a project the
    caller's organization is an active member of, whose terms include ``invoke``), else None."""
    from consortium.governance.projects import active_project_ids
    from consortium.store.tables.projects import Project

    model = session.get(RegisteredModel, d.model_id)
    if model is None or not model.project_id or model.project_id not in active_project_ids(session, p.org_id):
        return None
    prj = session.get(Project, model.project_id)
    return prj.id if prj is not None and "invoke" in (prj.terms or []) else None


def _may_call(session: Session, p: Principal, d: Deployment) -> bool:
    return (d.org_id == p.org_id or grants.find_grant(session, p, "deployment", d.id, Permission.invoke)
            is not None or project_access(session, p, d) is not None)


def lookup(session: Session, p: Principal, ref: str) -> Deployment | None:
    """The deployment ``ref`` names for the caller. An id or ``org~name`` names one exactly (not
    checked here: the caller authorizes, so that the owner sees refused attempts); a bare name is
    the caller's own organization's, else the single one it may call (``Conflict`` if several)."""
    d = find_deployment(session, ref)
    if d is not None or names.split_qualified(ref, "deployment")[0] is not None:
        return d
    name = ref.strip()
    own = session.scalar(select(Deployment).where(Deployment.org_id == p.org_id, Deployment.name == name))
    if own is not None:
        return own
    seen = [(_qualified(session, x), x) for x in session.scalars(select(Deployment).where(Deployment.name == name))
            if _may_call(session, p, x)]
    return names.pick_by_name("deployment", name, None, seen)


class Reached(NamedTuple):
    """A deployment as the caller reaches it: its row, and the grant it came through (None for the
    owner or a project member)."""

    deployment: Deployment
    grant: Grant | None


def get_deployment(session: Session, p: Principal, ref: str,
                   role: Role = Role.viewer) -> Reached:
    """A deployment the caller's organization owns (at ``role``), holds an ``invoke`` grant on, or
    may call through a project; anyone else gets the same 404 as for a name that does not exist."""
    d = lookup(session, p, ref)
    if d is None:
        raise not_found(ref)
    if d.org_id != p.org_id and project_access(session, p, d) is not None \
            and grants.find_grant(session, p, "deployment", d.id, Permission.invoke) is None:
        p.require(role)
        return Reached(d, None)
    try:
        g = grants.authorize(session, p, "deployment", d.id, d.org_id, Permission.invoke, role,
                             what=f"deployment {d.name!r}")
    except NotFound:
        raise not_found(ref) from None
    return Reached(d, g)


def list_deployments(session: Session, p: Principal) -> list[Deployment]:
    """Deployments the caller's organization owns, then those shared with it (grants to it or to
    its projects)."""
    return deployments_listing(session, p).all(session)


def deployments_listing(session: Session, p: Principal) -> Listing:
    """``list_deployments`` as one query: own first, then shared, each by name."""
    shared_ids = {g.resource_id for g in grants.list_grants(session, p, "received")
                  if g.resource_type == "deployment" and g.revoked_at is None
                  and (g.expires_at is None or g.expires_at > utcnow())}
    own = Deployment.org_id == p.org_id
    cond = or_(own, Deployment.id.in_(shared_ids)) if shared_ids else own
    return Listing(select(Deployment).where(cond), (case((own, 0), else_=1), Deployment.name, Deployment.id))


def delete_deployment(session: Session, p: Principal, d: Deployment) -> list[str]:
    """Undeploy: remove the endpoint and revoke its grants; returns the revoked grant ids. Only the
    owner organization's members may: a grantee, which sees the deployment, gets 403."""
    if d.org_id != p.org_id:
        raise PermissionDenied(f"only the organization that owns deployment {d.name!r} can undeploy it")
    p.require(Role.member, "undeploying")
    revoked = []
    for g in session.scalars(select(Grant).where(Grant.resource_type == "deployment", Grant.resource_id == d.id,
                                                 Grant.revoked_at.is_(None))):
        g.revoked_at = utcnow()
        revoked.append(g.id)
    session.delete(d)
    session.flush()
    return revoked


def deployment_view(session: Session, d: Deployment, grant: Grant | None = None) -> dict[str, Any]:
    model = session.get(RegisteredModel, d.model_id)
    if model is None:
        raise NotFound(f"the model of deployment {d.name} is gone")
    org = org_by_id(session, d.org_id).name
    try:
        v = resolve_version(session, d)
        version: int | None = v.version
        signature, task, class_names = v.signature, v.task, v.class_names
    except NotFound:
        version, signature, task, class_names = None, None, None, None
    ref = names.qualified(org, d.name)
    pinned = session.get(ModelVersion, d.version_id) if d.version_id else None
    out = {"id": d.id, "name": d.name, "org": org, "ref": ref, "model": f"{org}/{model.name}",
           "alias": d.alias, "pinned_version": pinned.version if pinned is not None else None,
           "version": version, "task": task, "class_names": class_names, "signature": signature,
           "description": d.description, "created_at": d.created_at,
           "endpoints": {"predict": f"/api/v1/deployments/{ref}/predict",
                         "open_inference": f"/v2/models/{ref}/infer"}}
    if grant is not None:
        out["limits"] = grant.limits or {}
    return out


def _resolve(session: Session, ref: str) -> tuple[str, str] | None:
    d = find_deployment(session, ref)
    return (d.id, d.org_id) if d else None


def _qualified(session: Session, d: Deployment) -> str:
    return names.qualified(org_by_id(session, d.org_id).name, d.name)


def _describe(session: Session, rid: str) -> str:
    d = session.get(Deployment, rid)
    return f"{org_by_id(session, d.org_id).name}/{d.name}" if d else rid


# The ``deployment`` resource type of grants (permission ``invoke``; limits per_minute/per_day),
# gathered by ``Services.start``.
DEPLOYMENT = grants.ResourceType("deployment", resolve=_resolve, permissions=frozenset({Permission.invoke}),
                                 describe=_describe, table=Deployment)
