"""Projects: ``ProjectBase`` -> ``ProjectCreate`` / ``ProjectUpdate`` (bodies) / ``ProjectPublic``
(an answer), their members, the membership answers and the project report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from consortium.api.schemas import In, Out, PosInt64


class Quota(In):
    per_minute: PosInt64 | None = None
    per_day: PosInt64 | None = None

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ProjectBase(BaseModel):
    purpose: str
    terms: list[str] = Field(description="permissions members extend to the project: metadata, compute, "
                                         "download, invoke")


class ProjectCreate(ProjectBase, In):
    name: str = Field(min_length=3, max_length=40)
    purpose: str = Field(min_length=1, max_length=2000)
    default_quota: Quota | None = None


class ProjectUpdate(In):
    purpose: str | None = Field(default=None, max_length=2000)
    default_quota: Quota | None = None


class ProjectInvite(In):
    org: str = Field(max_length=40)


class ProjectMemberUpdate(In):
    role: str | None = Field(default=None, pattern="^(lead|member)$")
    quota: Quota | None = None


class ProjectMemberPublic(Out):
    org: str
    role: str
    state: str
    quota: dict[str, int] | None
    invited_at: datetime | None
    joined_at: datetime | None
    ended_at: datetime | None


class ProjectSummary(ProjectBase, Out):
    """A project in a list: ``ref`` (``org~name``) names it unambiguously."""

    id: str
    name: str
    ref: str
    your_role: str | None
    your_state: str | None


class ProjectPublic(ProjectSummary):
    default_quota: dict[str, int] | None
    created_by: str
    created_at: datetime
    members: list[ProjectMemberPublic]


class ProjectMembership(Out):
    """Your organization's membership after declining or leaving."""

    project: str
    state: str


class ReportContribution(Out):
    organization: str | None
    resource_type: str
    resource: str
    permission: str
    granted_at: datetime
    state: str


class ReportJob(Out):
    id: str
    name: str
    kind: str
    state: str
    organization: str | None
    created_at: datetime
    result: dict[str, Any]


class ReportModel(Out):
    model: str
    latest_version: int | None
    organizations: list[Any]
    accuracy: float | None


class ReportUsage(Out):
    deployment: str
    caller: str | None
    calls: int
    errors: int


class ProjectReport(ProjectBase, Out):
    project: str
    members: list[ProjectMemberPublic]
    contributions: list[ReportContribution]
    jobs: list[ReportJob]
    models: list[ReportModel]
    deployment_usage: list[ReportUsage]
