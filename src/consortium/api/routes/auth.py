"""Log in and out (web sessions), switch organization, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from consortium.api.access import rule
from consortium.api.deps import SESSION_COOKIE, Caller, Ctx, SessionDep, Svc, client_address
from consortium.api.schemas.auth import (
    MembershipPublic,
    MePublic,
    OrgSwitch,
    WebSessionCreate,
    WebSessionCreated,
)
from consortium.errors import InvalidInput, Unauthenticated
from consortium.governance import credentials
from consortium.governance.principal import Principal

router = APIRouter(prefix="/auth", tags=["auth"])


def me_view(session: Session, p: Principal) -> MePublic:
    """The caller as ``/me`` shows it; ``is_operator`` is the credential's power, not the account's."""
    prof = credentials.profile(session, p.user_id)
    orgs = [MembershipPublic(name=name, display_name=shown, role=role) for name, shown, role in prof.memberships]
    return MePublic(user_id=p.user_id, email=p.user_email, name=prof.name,
                    org=p.org_name, role=p.role, via=p.via.split(":")[0], is_operator=p.is_operator,
                    organizations=orgs)


def set_cookie(response: Response, secret: str, request: Request, hours: int) -> None:
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=hours * 3600, path="/")


@router.post("/login", response_model=WebSessionCreated)
@rule("credential")
def login(body: WebSessionCreate, session: SessionDep, ctx: Ctx, svc: Svc, request: Request,
          response: Response) -> WebSessionCreated:
    """Exchange email and password for a web session (cookie) and a session token. Throttled per
    account and per client address: 429 with ``Retry-After`` after repeated failures."""
    ctx.details = {"email": body.email}
    p, ws, secret = credentials.password_login(session, svc.session_factory, body.email, body.password,
                                               client_address(request), svc.settings.session_hours)
    ctx.principal = p
    set_cookie(response, secret, request, svc.settings.session_hours)
    return WebSessionCreated(**me_view(session, p).model_dump(), session_token=secret, expires_at=ws.expires_at)


@router.post("/logout", status_code=204, response_model=None)
@rule("self")
def logout(p: Caller, session: SessionDep, request: Request, response: Response) -> Response:
    """End the current web session (API tokens are revoked with `tokens revoke`)."""
    from consortium.api.deps import bearer

    cred = bearer(request)
    if cred and p.via.startswith("session:"):
        credentials.end_session(session, cred[1])
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/switch-org", response_model=MePublic)
@rule("self")
def switch_org(body: OrgSwitch, p: Caller, session: SessionDep, request: Request) -> MePublic:
    """Make another of your organizations the current one for this web session."""
    from consortium.api.deps import bearer

    if not p.via.startswith("session:"):
        raise InvalidInput("API tokens are bound to one organization", hint="use a token of that organization")
    cred = bearer(request)
    if cred is None:
        raise Unauthenticated("switching organizations needs the session credential", hint="log in again")
    newp = credentials.switch_org(session, cred[1], body.org)
    request.state.ctx.principal = newp
    return me_view(session, newp)


me_router = APIRouter(tags=["auth"])


@me_router.get("/me", response_model=MePublic)
@rule("self")
async def me(p: Caller, session: SessionDep) -> MePublic:
    """Who the credential acts as: user, current organization and role, and all memberships."""
    return await run_in_threadpool(me_view, session, p)  # one hop; the answer is encoded on the loop
