"""Permissions that follow derived models: a contributor's consent before its data's model travels.

A model version trained on other organizations' data names them in its lineage (``datasets``,
each with ``owner_org_id``). Such a model carries their restrictions:

- **share / deploy**: giving an organization access to it (placing it in a project, which lets
  every active member read it: ``share``; an ``invoke`` grant on a deployment of it: ``deploy``)
  needs, from each contributor, that the organization is within what the contributor granted
  (it holds a grant of the contributor's on the data, directly or as an active member of a
  project the data was granted to), or that the project the model lives in allows it (both are
  active members and its terms include ``metadata`` to share, ``invoke`` to serve), or the
  contributor's approved consent request.
- **download**: the ONNX file of such a model can leak its training data, so its owner downloads
  it only when each contributor allows it: ``model_download`` in the dataset's policy, or an
  approved consent request for ``download``.

A consent request is made by the model's owner (a member), decided by an admin of the contributor;
both are audited by the API. A request naming an organization that no longer exists fails (404),
as does one for a contributor that is gone (409: nobody is left to consent).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from consortium.governance.identity import user_name
from consortium.governance.policies import rules_by_dataset
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import Organization
from consortium.store.tables.policies import ConsentRequest
from consortium.store.tables.projects import Project, ProjectMember
from consortium.store.tables.registry import ModelVersion, RegisteredModel

ACTIONS = ("share", "deploy", "download")
NOT_FOUND_HINT = "list consent requests with `consortium consents list`"


def contributors(session: Session, model: RegisteredModel, version: ModelVersion | None = None) -> dict[str, set[str]]:
    """Contributing organization id -> its dataset ids, for ``version`` (else every version),
    leaving out the model's own organization."""
    rows = [version] if version is not None else session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model.id))
    out: dict[str, set[str]] = {}
    for v in rows:
        for d in (v.lineage or {}).get("datasets") or []:
            owner, ds = d.get("owner_org_id"), d.get("dataset_id")
            if owner and owner != model.org_id:
                out.setdefault(owner, set()).update({ds} if ds else set())
    return out


def _active_members(session: Session, project_id: str) -> set[str]:
    return set(session.scalars(select(ProjectMember.org_id).where(ProjectMember.project_id == project_id,
                                                                 ProjectMember.state == "active")))


def granted_orgs(session: Session, contributor_id: str, dataset_ids: set[str]) -> set[str]:
    """Organizations the contributor gave a live grant on any of ``dataset_ids``: directly, or as
    active members of a project it granted to."""
    now = utcnow()
    grants = session.scalars(select(Grant).where(
        Grant.owner_org_id == contributor_id, Grant.resource_type == "dataset", Grant.resource_id.in_(dataset_ids),
        Grant.revoked_at.is_(None), or_(Grant.expires_at.is_(None), Grant.expires_at > now)))
    out: set[str] = set()
    for g in grants:
        if g.grantee_org_id:
            out.add(g.grantee_org_id)
        if g.grantee_project_id:
            out |= _active_members(session, g.grantee_project_id)
    return out


def _approved(session: Session, model_id: str, contributor_id: str, target_id: str, action: str) -> bool:
    return session.scalar(select(ConsentRequest.id).where(
        ConsentRequest.model_id == model_id, ConsentRequest.contributor_org_id == contributor_id,
        ConsentRequest.target_org_id == target_id, ConsentRequest.action == action,
        ConsentRequest.state == "approved")) is not None


TERM = {"deploy": "invoke", "share": "metadata"}  # the project term that lets members serve / read it


def _project_allows(session: Session, model: RegisteredModel, contributor_id: str, target_id: str,
                    action: str = "deploy", project_id: str | None = None) -> bool:
    project_id = project_id or model.project_id
    if not project_id:
        return False
    prj = session.get(Project, project_id)
    if prj is None or TERM[action] not in (prj.terms or []):
        return False
    members = _active_members(session, prj.id)
    return contributor_id in members and target_id in members


def missing(session: Session, model: RegisteredModel, target_id: str, action: str,
            version: ModelVersion | None = None, project_id: str | None = None) -> list[str]:
    """Contributor organization ids whose consent ``action`` towards ``target_id`` still needs
    (``project_id``: the project the model is shared through, when not yet its own)."""
    out = []
    found = contributors(session, model, version)
    policy = rules_by_dataset(session, sorted({d for ds in found.values() for d in ds})) if action == "download" \
        else {}
    for org_id, datasets in sorted(found.items()):
        if action == "download":
            if datasets and all(policy.get(d) is not None and policy[d].model_download for d in datasets):
                continue
        elif target_id in (org_id, model.org_id) or target_id in granted_orgs(session, org_id, datasets) \
                or _project_allows(session, model, org_id, target_id, action, project_id):
            continue
        if not _approved(session, model.id, org_id, target_id, action):
            out.append(org_id)
    return out


def _names(session: Session, org_ids: list[str]) -> list[str]:
    known = dict(session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(org_ids))).all())
    return [known.get(o, f"{o} (no longer exists)") for o in org_ids]


def require(session: Session, model: RegisteredModel, target_id: str, action: str, *, model_ref: str,
            version: ModelVersion | None = None, project_id: str | None = None) -> None:
    """``PermissionDenied`` naming every contributor whose consent ``action`` needs."""
    lacking = missing(session, model, target_id, action, version, project_id)
    if not lacking:
        return
    target = _names(session, [target_id])[0]
    what = {"download": "downloading its ONNX file",
            "share": f"sharing it with {target}", "deploy": f"serving it to {target}"}[action]
    raise PermissionDenied(
        f"model {model_ref} was trained on data of {', '.join(_names(session, lacking))}; {what} needs their consent",
        hint=f"ask with `consortium consents ask {model_ref} {target} --action {action}`"
             + (" (or the data owner sets model_download in its dataset policy)" if action == "download" else ""),
        details={"consent_needed": _names(session, lacking), "action": action})


def request(session: Session, p: Principal, model: RegisteredModel, target_org: str, action: str,
            note: str = "") -> list[ConsentRequest]:
    """Ask each contributor whose consent is missing (one request each; an open one is reused)."""
    p.require(Role.member, "asking for consent")
    if action not in ACTIONS:
        raise InvalidInput(f"unknown consent action {action!r}", hint=f"use one of {', '.join(ACTIONS)}")
    if model.org_id != p.org_id:
        raise PermissionDenied("only the model's owner organization asks for consent to share it")
    target = session.scalar(select(Organization).where(Organization.name == target_org))
    if target is None:
        raise NotFound(f"organization {target_org!r} does not exist (or no longer does): no consent can be asked "
                       "for it", hint="list organizations with `consortium orgs list`")
    target_id = model.org_id if action == "download" else target.id
    found = contributors(session, model)
    if not found:
        raise InvalidInput(f"model {model.name} was trained on no other organization's data: it needs no consent")
    gone = [o for o in found if session.get(Organization, o) is None]
    if gone:
        raise Conflict(f"contributor {', '.join(gone)} of model {model.name} no longer exists, so it cannot consent",
                       hint="retrain the model without its data")
    out = []
    for org_id in missing(session, model, target_id, action):
        row = session.scalar(select(ConsentRequest).where(
            ConsentRequest.model_id == model.id, ConsentRequest.contributor_org_id == org_id,
            ConsentRequest.target_org_id == target_id, ConsentRequest.action == action,
            ConsentRequest.state == "pending"))
        if row is None:
            row = ConsentRequest(id=new_id("cns"), model_id=model.id, requester_org_id=p.org_id,
                                 contributor_org_id=org_id, target_org_id=target_id, action=action,
                                 note=note[:2000], created_by=p.user_id)
            session.add(row)
        out.append(row)
    session.flush()
    return out


def find(session: Session, p: Principal, consent_id: str) -> ConsentRequest:
    """A request the caller's organization made or is asked (anyone else: 404)."""
    row = session.get(ConsentRequest, consent_id)
    if row is None or p.org_id not in (row.requester_org_id, row.contributor_org_id):
        raise NotFound(f"consent request {consent_id!r} not found", hint=NOT_FOUND_HINT)
    return row


def decide(session: Session, p: Principal, row: ConsentRequest, approve: bool) -> ConsentRequest:
    """An admin of the contributor approves or refuses (once; a decided request is final)."""
    if row.contributor_org_id != p.org_id:
        raise PermissionDenied("only the contributing organization decides on its consent")
    p.require(Role.admin, "deciding on consent")
    if row.state != "pending":
        raise Conflict(f"consent request {row.id} is already {row.state}",
                       hint="ask again for a new decision")
    row.state = "approved" if approve else "refused"
    row.decided_by, row.decided_at = p.user_id, utcnow()
    session.flush()
    return row


def listing(p: Principal, direction: str = "all") -> Listing:
    q = select(ConsentRequest)
    if direction == "received":
        q = q.where(ConsentRequest.contributor_org_id == p.org_id)
    elif direction == "sent":
        q = q.where(ConsentRequest.requester_org_id == p.org_id)
    else:
        q = q.where(or_(ConsentRequest.contributor_org_id == p.org_id, ConsentRequest.requester_org_id == p.org_id))
    return Listing(q, (ConsentRequest.created_at, ConsentRequest.id), desc=True)


def view(session: Session, row: ConsentRequest) -> dict[str, Any]:
    orgs = dict(zip([row.requester_org_id, row.contributor_org_id, row.target_org_id],
                    _names(session, [row.requester_org_id, row.contributor_org_id, row.target_org_id]), strict=True))
    model = session.get(RegisteredModel, row.model_id)
    return {"id": row.id, "model": f"{orgs[row.requester_org_id]}/{model.name if model else '?'}",
            "requester": orgs[row.requester_org_id], "contributor": orgs[row.contributor_org_id],
            "organization": orgs[row.target_org_id], "action": row.action, "state": row.state, "note": row.note,
            "created_by": user_name(session, row.created_by) if row.created_by else None,
            "decided_by": user_name(session, row.decided_by) if row.decided_by else None,
            "created_at": row.created_at, "decided_at": row.decided_at}


def require_for_grant(session: Session, g: Grant) -> None:
    """An ``invoke`` grant on a deployment of a derived model serves it to the grantee (or to each
    active member of the grantee project): each needs the contributors' consent (``deploy``)."""
    from consortium.store.tables.registry import Deployment

    if g.resource_type != "deployment":
        return
    dep = session.get(Deployment, g.resource_id)
    model = session.get(RegisteredModel, dep.model_id) if dep is not None else None
    if dep is None or model is None:
        return
    version = session.get(ModelVersion, dep.version_id) if dep.version_id else None
    targets = {g.grantee_org_id} if g.grantee_org_id else set()
    if g.grantee_project_id:
        targets |= _active_members(session, g.grantee_project_id)
    owner = session.get(Organization, model.org_id)
    ref = f"{owner.name if owner else '?'}/{model.name}"
    for target in sorted(t for t in targets if t and t != model.org_id):
        require(session, model, target, "deploy", model_ref=ref, version=version)


def require_for_project_deployment(session: Session, model: RegisteredModel, version_id: str | None) -> None:
    """A deployment of a project's model serves it to every active member of the project: each
    needs the contributors' consent (``deploy``), as an ``invoke`` grant would."""
    if not model.project_id:
        return
    version = session.get(ModelVersion, version_id) if version_id else None
    owner = session.get(Organization, model.org_id)
    ref = f"{owner.name if owner else '?'}/{model.name}"
    for target in sorted(_active_members(session, model.project_id) - {model.org_id}):
        require(session, model, target, "deploy", model_ref=ref, version=version)


def require_for_project(session: Session, model: RegisteredModel, project_id: str) -> None:
    """Placing a derived model in a project shares it (its card, versions, plots, explanations)
    with every active member: each needs the contributors' consent (``share``), unless it is within
    what they granted, or the contributor is a member too and the project's terms include
    ``metadata``."""
    owner = session.get(Organization, model.org_id)
    ref = f"{owner.name if owner else '?'}/{model.name}"
    for target in sorted(_active_members(session, project_id) - {model.org_id}):
        require(session, model, target, "share", model_ref=ref, project_id=project_id)

