"""Dataset policies: the owner sets, replaces or removes the rules of one of its datasets; anyone
who sees the dataset reads them (a grantee must know the rules its jobs meet); the owner's node
reports the jobs it refused against them.

``PUT /datasets/{org}/{dataset}/policy`` takes the whole rule set (``policy_rules.Rules``) and is
for the owner organization's admins (a grantee gets 403, anyone else 404); an impossible or
contradictory rule set gets a 422 naming each rule. Each change is audited with the rules before
and after; each refusal (at submission, in the jobs route; at the node, here) with the rules broken.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep
from consortium.api.routes.datasets import Readable, readable
from consortium.api.schemas.policies import PolicyPublic, RefusalCreate, RefusalRecorded
from consortium.data import catalog
from consortium.data.catalog import Dataset
from consortium.errors import NotFound, PermissionDenied
from consortium.governance import policies
from consortium.governance.policy_rules import Rules
from consortium.governance.roles import Role
from consortium.jobs import site_refusals
from consortium.store.tables.data import DatasetVersion
from consortium.store.tables.federation import NodeApproval

router = APIRouter(prefix="/datasets", tags=["datasets"])


def owned(ds: Annotated[Dataset, Depends(readable)], p: Caller) -> Dataset:
    """The owner organization's admins change a policy: a grantee gets 403, anyone else 404."""
    if ds.org_id != p.org_id:
        raise PermissionDenied("only the dataset's owner organization sets its policy",
                               hint="ask its owner to change the rules")
    p.require(Role.admin, "setting a dataset policy")
    return ds


Owned = Annotated[Dataset, Depends(owned)]


def _latest(session: Session, ds: Dataset) -> DatasetVersion | None:
    return session.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
                          .order_by(DatasetVersion.version.desc()).limit(1))


@router.get("/{org}/{dataset}/policy", response_model=PolicyPublic)
@rule("resource")
def get_policy(ds: Readable, session: SessionDep) -> dict[str, Any]:
    """The dataset's rules (all unset when its owner set none)."""
    return policies.view(session, catalog.full_name(session, ds), policies.find(session, ds.id))


@router.put("/{org}/{dataset}/policy", response_model=PolicyPublic)
@rule("resource", Role.admin)
def set_policy(ds: Owned, body: Rules, p: Caller, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Replace the dataset's rules; every job using it is checked against them at submission and at the node."""
    before = policies.find(session, ds.id)
    old = dict(before.rules) if before is not None else {}
    latest = _latest(session, ds)
    schema = latest.schema if latest is not None else {}
    row = policies.set_policy(session, p, ds.id, ds.org_id, body,
                              rows=schema.get("rows"), kind=schema.get("kind") or (latest.kind if latest else None))
    ctx.details = {"before": old, "after": row.rules}
    return policies.view(session, catalog.full_name(session, ds), row)


@router.delete("/{org}/{dataset}/policy", response_model=PolicyPublic)
@rule("resource", Role.admin)
def delete_policy(ds: Owned, p: Caller, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Remove every rule (jobs then need only the grants and the privacy budget)."""
    before = policies.find(session, ds.id)
    ctx.details = {"before": dict(before.rules) if before is not None else {}, "after": {}}
    policies.clear_policy(session, p, ds.id)
    return policies.view(session, catalog.full_name(session, ds), None)


@router.post("/{org}/{dataset}/policy/refusals", response_model=RefusalRecorded, status_code=201)
@rule("resource", Role.admin)
def record_refusal(ds: Owned, body: RefusalCreate, p: Caller, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """The owner's node refused a job against this policy (``consortium node`` reports it): audited.
    The job must be one the hub asked this organization to take part in."""
    asked = session.scalar(select(NodeApproval.id).where(NodeApproval.job_id == body.job_id,
                                                         NodeApproval.org_id == p.org_id))
    if asked is None:
        raise NotFound(f"job {body.job_id!r} was never assigned to your organization",
                       hint="a node reports only jobs its hub assigned to it")
    ctx.details = {"job_id": body.job_id, "rules": body.rules, "message": body.message, "at": "node"}
    # the submitter reads in the job's log, and in a failed job's error, which site left and why
    site_refusals.record(session, body.job_id, p.org_name, catalog.full_name(session, ds), body.rules, body.message)
    return {"dataset": catalog.full_name(session, ds), "job_id": body.job_id, "rules": body.rules}
