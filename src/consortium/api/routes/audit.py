"""The audit log: events that concern your organization, verification of the whole chain, and
signed checkpoints of its head that organizations keep to prove later that it was not rewritten."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query

from consortium.api.access import rule
from consortium.api.deps import SessionDep, Svc, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas import NonNegInt64
from consortium.api.schemas.audit import (
    AuditEventPublic,
    CheckpointCheck,
    CheckpointOut,
    PublicKeyOut,
    VerifyIn,
    VerifyOut,
)
from consortium.governance import audit, audit_verify, grants
from consortium.store.paging import Page

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Paged[AuditEventPublic])
@rule("org")
async def list_events(p: Viewer, session: SessionDep, page: PageDep,
                      action: Annotated[str | None, Query(max_length=80)] = None,
                      outcome: Annotated[str | None, Query(max_length=32)] = None,
                      since_seq: Annotated[NonNegInt64, Query()] = 0) -> dict[str, Any]:
    """Events in which your organization acted or whose resource it owns (newest first)."""
    def read() -> Page[dict[str, Any]]:
        return audit.org_page(session, p.org_id, grants.projects_of(session, p.org_id), page.after, page.limit,
                              action=action, since_seq=since_seq, outcome=outcome)

    # one thread hop for the page's statement; the answer is checked and encoded on the loop
    return page.out(await anyio.to_thread.run_sync(read))


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
