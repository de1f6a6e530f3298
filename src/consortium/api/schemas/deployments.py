"""Deployments (the ``/deployments`` routes): ``DeploymentBase`` -> ``DeploymentCreate`` (a body) /
``DeploymentPublic`` (an answer), the undeploy answer and the usage figures.

``limits`` is there only for a deployment shared with the caller's organization (the grant's
quotas): the routes answer with ``response_model_exclude_unset``, so the key stays absent for
the owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out


class DeploymentBase(BaseModel):
    name: str = Field(description="the deployment's name, unique in its organization")
    description: str = ""


class DeploymentCreate(DeploymentBase, In):
    model: str = Field(description="[org/]model[:version|@alias], a model of your organization")


class DeploymentEndpoints(Out):
    predict: str
    open_inference: str


class DeploymentPublic(DeploymentBase, Out):
    id: str
    org: str
    ref: str  # org~name
    model: str  # org/model
    alias: str | None
    pinned_version: int | None
    version: int | None  # the version served now (None once it is gone)
    task: str | None
    class_names: list[Any] | None
    signature: dict[str, Any] | None
    created_at: datetime
    endpoints: DeploymentEndpoints
    limits: dict[str, Any] | None = None  # a grantee's quotas only


class DeploymentDeleted(Out):
    name: str
    deleted: bool
    revoked_grants: list[str]


class UsageTotals(Out):
    count: int
    errors: int
    rejected: int


class UsageMinute(UsageTotals):
    minute: datetime
    org: str
    latency_mean_ms: float | None
    latency_max_ms: float


class DeploymentUsage(Out):
    deployment: str
    minutes: int
    totals: dict[str, UsageTotals]  # by calling organization
    per_minute: list[UsageMinute]
