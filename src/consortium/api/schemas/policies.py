"""Dataset policies and consent requests: the rules a data owner sets (``Rules`` is the body of a
PUT, unknown rules refused), a node's refusal report, and consent requests for derived models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from consortium.api.schemas import In, Out


class PolicyPublic(Out):
    dataset: str
    rules: dict[str, Any] = Field(description="every rule; unset ones as null (or false)")
    set: list[str] = Field(description="the rules that restrict something")
    set_by: str | None
    updated_at: datetime | None


class RefusalCreate(In):
    job_id: str = Field(min_length=1, max_length=64, description="the federated job the node refused")
    rules: list[str] = Field(min_length=1, max_length=20, description="the rules the job broke")
    message: str = Field("", max_length=2000)


class RefusalRecorded(Out):
    dataset: str
    job_id: str
    rules: list[str]


class ConsentCreate(In):
    organization: str = Field(min_length=1, max_length=64,
                              description="the organization the model would go to (for download: your own)")
    action: Literal["share", "deploy", "download"] = "deploy"
    note: str = Field("", max_length=2000)


class ConsentPublic(Out):
    id: str
    model: str
    requester: str
    contributor: str
    organization: str
    action: str
    state: str
    note: str
    created_by: str | None
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
