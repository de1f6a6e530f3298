"""The audit log: events that concern your organization, verification of the whole chain, and
signed checkpoints of its head that organizations keep to prove later that it was not rewritten."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from consortium.api.access import rule
from consortium.api.deps import SessionDep, Svc, Viewer
from consortium.api.schemas import NonNegInt64, Out
from consortium.governance import audit, audit_verify, projects

router = APIRouter(prefix="/audit", tags=["audit"])


class EventOut(Out):
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


class CheckpointIn(BaseModel):
    """A checkpoint as ``GET /audit/checkpoint`` gave it (extra fields such as ``format`` are ignored)."""

    seq: NonNegInt64
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: str = Field(max_length=40)
    key_id: str = Field(max_length=16)
    signature: str = Field(max_length=100)
    public_key: str | None = Field(None, max_length=60)


class CheckpointOut(Out):
    format: str
    seq: int
    hash: str
    time: str
    key_id: str
    algorithm: str
    public_key: str
    signature: str


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


@router.get("", response_model=list[EventOut])
@rule("org")
def list_events(p: Viewer, session: SessionDep,
                action: Annotated[str | None, Query(max_length=80)] = None,
                outcome: Annotated[str | None, Query(max_length=32)] = None,
                since_seq: Annotated[NonNegInt64, Query()] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[EventOut]:
    """Events in which your organization acted or whose resource it owns (newest first)."""
    rows = audit.events_for_org(session, p.org_id, project_ids=projects.active_project_ids(session, p.org_id),
                                action=action, since_seq=since_seq, limit=limit, outcome=outcome)
    return [EventOut(**{k: getattr(e, k) for k in EventOut.model_fields if k != "details"},
                     details=json.loads(e.details or "{}")) for e in rows]


def _verify_out(r: audit_verify.VerifyResult) -> VerifyOut:
    return VerifyOut(ok=r.ok, events=r.events, first_bad_seq=r.first_bad_seq, problem=r.problem,
                     seconds=round(r.seconds, 4), key_id=r.key_id, legacy_events=r.legacy_events,
                     sealed_at=r.sealed_at,
                     checkpoints=[CheckpointCheck(seq=c.seq, time=c.time, ok=c.ok, problem=c.problem)
                                  for c in r.checkpoints])


@router.get("/verify", response_model=VerifyOut)
@rule("org")
def verify_chain(p: Viewer, session: SessionDep, svc: Svc) -> VerifyOut:
    """Walk the whole keyed hash chain; name the first event that was altered, deleted or reordered."""
    return _verify_out(audit_verify.verify(session, svc.audit_chain))


@router.post("/verify", response_model=VerifyOut)
@rule("org")
def verify_chain_against(body: VerifyIn, p: Viewer, session: SessionDep, svc: Svc) -> VerifyOut:
    """As ``GET /verify``, and the chain must still match each checkpoint you kept (422 for a
    checkpoint this hub did not sign)."""
    cps = [c.model_dump() for c in body.checkpoints]
    return _verify_out(audit_verify.verify(session, svc.audit_chain, cps))


@router.get("/checkpoint", response_model=CheckpointOut)
@rule("org")
def checkpoint(p: Viewer, session: SessionDep, svc: Svc) -> dict[str, Any]:
    """The chain's head (seq, hash) and the time, signed with the hub's audit key (Ed25519): keep
    it, and ``POST /verify`` with it later fails if the chain was cut short or rewritten before it."""
    return svc.audit_chain.checkpoint(session)


@router.get("/public-key", response_model=PublicKeyOut)
@rule("org")
def public_key(p: Viewer, svc: Svc) -> dict[str, str]:
    """The Ed25519 public key that verifies this hub's checkpoints offline (base64, raw 32 bytes)."""
    return svc.audit_chain.public_key()
