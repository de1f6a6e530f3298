"""API tokens: random, shown once, stored hashed; scoped to one organization and a role."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep, Viewer
from consortium.api.schemas import In, Out
from consortium.errors import NotFound
from consortium.governance import credentials
from consortium.governance.roles import Role

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenIn(In):
    name: str = Field(min_length=1, max_length=80)
    role: Role | None = Field(default=None, description="at most your own role; default: your role")
    days: int = Field(default=90, ge=1, le=365)


class TokenOut(Out):
    id: str
    name: str
    user_id: str
    role: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; store it now")


def token_in_my_org(token_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> str:
    owner = credentials.token_org(session, token_id)
    if owner is not None:  # recorded for the owner's audit trail, even when refused
        ctx.resource("token", token_id, owner)
    if owner != p.org_id:
        raise NotFound(f"token {token_id!r} not found")
    return token_id


@router.post("", response_model=TokenCreated, status_code=201)
@rule("org", Role.viewer)
def create_token(body: TokenIn, p: Viewer, session: SessionDep, ctx: Ctx) -> TokenCreated:
    """Create a token for yourself in your current organization."""
    tok, secret = credentials.create_token(session, p, body.name, body.role, body.days)
    ctx.resource("token", tok.id, p.org_id)
    ctx.details = {"name": tok.name, "role": tok.role}
    return TokenCreated(**TokenOut.model_validate(tok).model_dump(), token=secret)


@router.get("", response_model=list[TokenOut])
@rule("org", Role.viewer)
def list_tokens(p: Viewer, session: SessionDep) -> list[TokenOut]:
    """Your tokens; admins see every token of the organization."""
    return [TokenOut.model_validate(tok) for tok in credentials.list_tokens(session, p)]


@router.delete("/{token_id}", response_model=TokenOut)
@rule("resource", Role.admin)
def revoke_token(token_id: Annotated[str, Depends(token_in_my_org)], p: Caller,
                 session: SessionDep) -> TokenOut:
    """Revoke one of your tokens (admins: anyone's in the organization). Takes effect at once."""
    return TokenOut.model_validate(credentials.revoke_token(session, p, token_id))
