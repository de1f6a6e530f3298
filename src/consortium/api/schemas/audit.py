"""The audit log: events, chain verification and signed checkpoints.

Events are answered straight from their rows (``from_attributes``); ``details`` is stored as
canonical JSON text and parsed on the way out.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from consortium.api.schemas import NonNegInt64, Out


class AuditEventPublic(Out):
    seq: int
    time: datetime
    request_id: str
    actor_user_id: str | None
    actor_org_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    resource_org_id: str | None
    project_id: str | None
    outcome: str
    details: dict[str, Any]
    hash: str

    @field_validator("details", mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        return json.loads(v or "{}") if isinstance(v, str | bytes) else v


class CheckpointBase(BaseModel):
    """A signed head of the chain: position, hash, time, and the key that signed it."""

    seq: NonNegInt64
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: str = Field(max_length=40)
    key_id: str = Field(max_length=16)
    signature: str = Field(max_length=100)


class CheckpointIn(CheckpointBase):
    """A checkpoint as ``GET /audit/checkpoint`` gave it (extra fields such as ``format`` are ignored)."""

    public_key: str | None = Field(None, max_length=60)


class CheckpointOut(CheckpointBase, Out):
    format: str
    algorithm: str
    public_key: str


class PublicKeyOut(Out):
    algorithm: str
    key_id: str
    public_key: str


class VerifyIn(BaseModel):
    checkpoints: list[CheckpointIn] = Field(default_factory=list, max_length=100)


class CheckpointCheck(Out):
    seq: int
    time: str
    ok: bool
    problem: str | None


class VerifyOut(Out):
    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    seconds: float
    key_id: str | None
    legacy_events: int  # events 1..legacy_events predate the keyed chain; one seal covers them
    sealed_at: datetime | None
    checkpoints: list[CheckpointCheck]
