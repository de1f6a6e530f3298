"""API tokens: random, shown once, stored hashed; scoped to one organization and a role."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends

from consortium.api.access import rule
from consortium.api.deps import Caller, Ctx, SessionDep, Viewer, of_my_org
from consortium.api.pagination import Paged, PageDep
from consortium.api.schemas.tokens import TokenCreate, TokenCreated, TokenPublic
from consortium.governance import credentials
from consortium.governance.roles import Role

router = APIRouter(prefix="/tokens", tags=["tokens"])


def token_in_my_org(token_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> str:
    return of_my_org("token", token_id, credentials.token_org(session, token_id), p, ctx)


@router.post("", response_model=TokenCreated, status_code=201)
@rule("org", Role.viewer)
def create_token(body: TokenCreate, p: Viewer, session: SessionDep, ctx: Ctx) -> TokenCreated:
    """Create a token for yourself in your current organization; the secret is shown this once."""
    tok, secret = credentials.create_token(session, p, body.name, body.role, body.days)
    ctx.resource("token", tok.id, p.org_id)
    ctx.details = {"name": tok.name, "role": tok.role}
    return TokenCreated(**TokenPublic.model_validate(tok).model_dump(), token=secret)


@router.get("", response_model=Paged[TokenPublic])
@rule("org", Role.viewer)
async def list_tokens(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """Your tokens, oldest first; admins see every token of the organization. Never their secrets."""
    # one thread hop for the page's statement; the answer is checked and encoded on the loop
    return page.out(await anyio.to_thread.run_sync(credentials.tokens_listing(p).page_rows, session, page.after,
                                                   page.limit, credentials.public_columns(TokenPublic)))


@router.delete("/{token_id}", response_model=TokenPublic)
@rule("resource", Role.admin)
def revoke_token(token_id: Annotated[str, Depends(token_in_my_org)], p: Caller,
                 session: SessionDep) -> TokenPublic:
    """Revoke one of your tokens (admins: anyone's in the organization). Takes effect at once."""
    return TokenPublic.model_validate(credentials.revoke_token(session, p, token_id))
