"""Key management for hub operators: status and master-key rotation."""

from __future__ import annotations

from fastapi import APIRouter

from consortium.api.access import rule
from consortium.api.deps import Operator, SessionDep, Svc
from consortium.api.schemas.keys import KeyringPublic, KeyringRotated

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("", response_model=KeyringPublic)
@rule("operator")
def key_status(p: Operator, session: SessionDep, svc: Svc) -> KeyringPublic:
    """Which master key is active and how many organization data keys it wraps."""
    return KeyringPublic.model_validate(svc.keys.status(session))


@router.post("/rotate", response_model=KeyringRotated)
@rule("operator")
def rotate_master_key(p: Operator, session: SessionDep, svc: Svc) -> KeyringRotated:
    """Re-wrap every organization's data key under a new master key (data is not re-encrypted)."""
    return KeyringRotated.model_validate(svc.keys.rotate(session))
