"""Key management for hub operators: status and master-key rotation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from consortium.api.access import rule
from consortium.api.deps import Operator, SessionDep, Svc

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("")
@rule("operator")
def key_status(p: Operator, session: SessionDep, svc: Svc) -> dict[str, Any]:
    """Which master key is active and how many organization data keys it wraps."""
    return svc.keys.status(session)


@router.post("/rotate")
@rule("operator")
def rotate_master_key(p: Operator, session: SessionDep, svc: Svc) -> dict[str, Any]:
    """Re-wrap every organization's data key under a new master key (data is not re-encrypted)."""
    return svc.keys.rotate(session)
