"""Federation nodes (``NodeBase`` -> ``NodeCreate`` / ``NodePublic``), approvals and privacy budgets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out


class NodeBase(BaseModel):
    name: str = Field(description="the node's name inside your organization, e.g. 'site-1'")
    approve: Literal["auto", "manual"] = "auto"
    datasets: list[dict[str, Any]] = Field(default_factory=list,
                                           description="advertised datasets: name, kind, rows, columns, stats")
    agent: dict[str, Any] = Field(default_factory=dict)


class NodeCreate(NodeBase, In):
    pass


class DeletedCopy(In):
    """A withdrawn dataset version's copy the node deleted from its data directory."""

    withdrawal: str = Field(min_length=1, max_length=32, description="the withdrawal's id (from `withdrawn`)")
    dataset: str = Field(min_length=1, max_length=128, description="the local dataset's name")


class NodeHeartbeat(In):
    datasets: list[dict[str, Any]] | None = None
    deleted: list[DeletedCopy] = Field(default_factory=list, max_length=200,
                                       description="withdrawn copies the node deleted since its last beat")


class NodePublic(NodeBase, Out):
    """A node: whether it is online, jobs waiting for your approval (``pending``) and the runs it
    should join now (``assignments``: job id, SuperLink address, local dataset, CA certificate)."""

    id: str
    org: str
    created_at: datetime
    last_seen: datetime
    online: bool
    pending: list[str]
    assignments: list[dict[str, Any]]
    withdrawn: list[dict[str, Any]] = Field(
        default_factory=list, description="withdrawn versions whose copy the node still advertises: delete it "
                                          "(withdrawal id, dataset name, version, checksum)")


class NodeDecision(Out):
    job_id: str
    org: str
    node: str
    state: str


class PrivacyBudgetUpdate(In):
    epsilon: float = Field(gt=0, description="most epsilon all federated jobs together may spend")
    delta: float = Field(1e-5, gt=0, lt=1)


class PrivacySpendPublic(Out):
    job_id: str
    epsilon: float
    delta: float
    at: str


class PrivacyBudgetPublic(Out):
    """The budget (epsilon at delta; null: none set), what finished jobs spent, what running ones
    reserved, and what remains."""

    epsilon: float | None
    delta: float | None
    spent: float
    reserved: float
    remaining: float | None
    ledger: list[PrivacySpendPublic]
