"""Answers of the withdrawal routes (``api.routes.withdrawals``; ``data.withdrawal.view``/``marks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from consortium.api.schemas import Out


class MarkedVersion(Out):
    """A model version marked as derived from the withdrawn data, and how lineage reached it."""

    version_id: str
    model: str = Field(description="owner/name of the model")
    version: int
    via: str = Field(description="the job or parent version through which it derives from the data")


class AffectedDeployment(Out):
    id: str
    name: str
    org_id: str


class NodeCopy(Out):
    """A copy of the version at one of the owner's nodes, deleted there and reported back."""

    node: str
    dataset: str
    deleted_at: datetime


class WithdrawalOut(Out):
    """A withdrawn dataset version and what followed from it (``effects``, as recorded when it
    was withdrawn, and the copies sites reported deleted since)."""

    id: str
    dataset: str = Field(description="owner/name of the dataset")
    version: int
    mode: str = Field(description="what deployments of derived models do: stop, or warn their owner")
    reason: str
    checksum: str | None = None
    size_bytes: int | None = None
    row_count: int | None = None
    created_at: datetime
    created_by: str | None = None
    grants_ended: list[str] = Field(description="ids of the dataset's grants the withdrawal ended")
    models: list[MarkedVersion] = Field(description="model versions marked as derived from the version")
    deployments: list[AffectedDeployment] = Field(description="deployments of those versions (they stop or warn, "
                                                              "as ``mode`` says)")
    node_copies: list[NodeCopy] = Field(description="copies at the owner's nodes that were deleted")


class WithdrawalList(Out):
    items: list[WithdrawalOut]


class WithdrawalMark(Out):
    """A withdrawal that marked a model version, and through which lineage (``via``)."""

    withdrawal: str
    dataset: str
    version: int
    mode: str
    via: str = Field(description="the job or parent version through which it derives from the data")
    reason: str
    created_at: datetime


class VersionWithdrawals(Out):
    version: int
    items: list[WithdrawalMark]


class RetrainJob(Out):
    """The "retrain without" job: the version's recipe over the datasets that remain."""

    id: str
    name: str
    state: str
    recipe: dict[str, Any]
