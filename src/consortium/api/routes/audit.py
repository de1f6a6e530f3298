"""The audit log: events that concern your organization, and verification of the whole chain."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from consortium.api.access import rule
from consortium.api.deps import SessionDep, Viewer
from consortium.api.schemas import NonNegInt64, Out
from consortium.governance import audit
from consortium.governance.grants import PROJECT_MEMBERSHIP

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


class VerifyOut(Out):
    ok: bool
    events: int
    first_bad_seq: int | None
    problem: str | None
    seconds: float


@router.get("", response_model=list[EventOut])
@rule("org")
def list_events(p: Viewer, session: SessionDep,
                action: Annotated[str | None, Query(max_length=80)] = None,
                outcome: Annotated[str | None, Query(max_length=32)] = None,
                since_seq: Annotated[NonNegInt64, Query()] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[EventOut]:
    """Events in which your organization acted or whose resource it owns (newest first)."""
    projects = [pid for hook in PROJECT_MEMBERSHIP for pid in hook(session, p.org_id)]
    rows = audit.events_for_org(session, p.org_id, project_ids=projects, action=action,
                                since_seq=since_seq, limit=limit, outcome=outcome)
    return [EventOut(**{k: getattr(e, k) for k in EventOut.model_fields if k != "details"},
                     details=json.loads(e.details or "{}")) for e in rows]


@router.get("/verify", response_model=VerifyOut)
@rule("org")
def verify_chain(p: Viewer, session: SessionDep) -> VerifyOut:
    """Walk the whole hash chain; name the first event that was altered, deleted or reordered."""
    r = audit.verify(session)
    return VerifyOut(ok=r.ok, events=r.events, first_bad_seq=r.first_bad_seq, problem=r.problem,
                     seconds=round(r.seconds, 4))
