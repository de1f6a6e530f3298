"""Withdrawal of dataset versions through lineage (``consortium.data.withdrawal``): withdraw,
list and inspect withdrawals, see what marked a model version, and retrain without the data."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.routes.datasets import Deletable, Readable
from consortium.api.routes.models import MemberModelDep, ModelDep
from consortium.api.schemas import VersionRef
from consortium.api.schemas.withdrawals import (
    RetrainJob,
    VersionWithdrawals,
    WithdrawalList,
    WithdrawalOut,
)
from consortium.data import withdrawal
from consortium.errors import InvalidInput
from consortium.governance.roles import Role
from consortium.monitoring.retrain_without import retrain_without
from consortium.registry import models as reg
from consortium.store.tables.protection import DatasetWithdrawal

router = APIRouter(tags=["withdrawals"])


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["stop", "warn"] = Field("stop", description="what deployments of derived models do: stop, or "
                                                             "serve on with a warning to their owner")
    reason: str = Field("", max_length=2000, description="kept in the record and the audit log")
    end_grants: bool = Field(True, description="end the dataset's grants (false: keep them for its other versions)")


def visible_withdrawal(withdrawal_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> DatasetWithdrawal:
    w = session.get(DatasetWithdrawal, withdrawal_id)
    if w is not None:
        ctx.resource("withdrawal", w.id, w.org_id)
    return withdrawal.get(session, p, withdrawal_id)


WithdrawalDep = Annotated[DatasetWithdrawal, Depends(visible_withdrawal)]


def _number(version: str) -> int:
    if not version.isdigit():
        raise InvalidInput(f"version {version!r} is not a version number",
                           hint="name the version to withdraw by its number (see `consortium datasets show`)")
    return int(version)


@router.post("/datasets/{org}/{dataset}/versions/{version}/withdraw", status_code=201,
             response_model=WithdrawalOut)
@rule("resource", Role.admin)
def withdraw(ds: Deletable, version: VersionRef, body: WithdrawIn, p: Caller, session: SessionDep, svc: Svc,
             ctx: Ctx) -> dict[str, Any]:
    """Withdraw one version of your dataset: its grants end, every model version derived from it
    is marked (through lineage: federated models and models built on them), deployments of those
    stop or warn their owner, and its blob is deleted once this commits. 409 while a job reads it."""
    w, events = withdrawal.withdraw(session, svc.blobs, p, ds, _number(version), mode=body.mode,
                                    reason=body.reason, end_grants=body.end_grants, request_id=ctx.request_id)
    ctx.details = {"withdrawal": w.id, "version": w.version, "mode": w.mode, "reason": w.reason,
                   "grants_ended": len(w.effects["grants_ended"]), "models": len(w.effects["models"]),
                   "deployments": [d["id"] for d in w.effects["deployments"]]}
    ctx.extra.extend(events)
    svc.serving.invalidate()  # this process at once; other replicas within the gate's cache life
    return withdrawal.view(w)


@router.get("/datasets/{org}/{dataset}/withdrawals", response_model=WithdrawalList)
@rule("resource")
def dataset_withdrawals(ds: Readable, session: SessionDep) -> dict[str, Any]:
    """The withdrawn versions of a dataset you can see (number, when, why, what followed)."""
    return {"items": [withdrawal.view(w) for w in withdrawal.of_dataset(session, ds)]}


@router.get("/withdrawals", response_model=Paged[WithdrawalOut])
@rule("org")
def list_withdrawals(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """Withdrawals your organization made, and those that marked its model versions, newest first."""
    return page.map(withdrawal.concerning(p.org_id).page(session, page.after, page.limit), withdrawal.view)


@router.get("/withdrawals/{withdrawal_id}", response_model=WithdrawalOut)
@rule("resource")
def get_withdrawal(w: WithdrawalDep) -> dict[str, Any]:
    return withdrawal.view(w)


@router.get("/models/{owner}/{model}/versions/{version}/withdrawals", response_model=VersionWithdrawals)
@rule("resource")
def version_withdrawals(m: ModelDep, version: VersionRef, session: SessionDep) -> dict[str, Any]:
    """The withdrawals that marked this version (empty: it derives from no withdrawn data)."""
    v = reg.get_version(session, m, version)
    return {"version": v.version, "items": withdrawal.marks(session, v.id)}


@router.post("/models/{owner}/{model}/versions/{version}/retrain-without", status_code=201,
             response_model=RetrainJob)
@rule("resource", Role.member)
def retrain(m: MemberModelDep, version: VersionRef, p: Caller, session: SessionDep, svc: Svc,
            ctx: Ctx) -> dict[str, Any]:
    """One call: the version's recipe again, over the datasets that remain without the withdrawn
    data, as a new job that registers a new version of the same model."""
    v = reg.get_version(session, m, version)
    job = retrain_without(session, p, m, v, svc.submit_checks)
    ctx.details = {"version": v.version, "job": job.id}
    return {"id": job.id, "name": job.name, "state": job.state, "recipe": job.recipe}
