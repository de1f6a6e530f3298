"""Log in and out (web sessions), switch organization, and who am I."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from consortium.api.access import rule
from consortium.api.deps import SESSION_COOKIE, Caller, Ctx, SessionDep, Svc, client_address
from consortium.api.schemas import In, Out
from consortium.errors import InvalidInput
from consortium.governance import credentials, identity
from consortium.governance.principal import Principal

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(In):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class OrgRole(Out):
    name: str
    display_name: str
    role: str


class MeOut(Out):
    user_id: str
    email: str
    name: str
    org: str
    role: str
    via: str
    is_operator: bool = Field(description="this credential may do hub-operator actions: an operator "
                                          "account acting with the admin or owner role")
    organizations: list[OrgRole]


class LoginOut(MeOut):
    session_token: str
    expires_at: datetime


class SwitchIn(In):
    org: str = Field(max_length=40)


def me_view(session: Session, p: Principal) -> MeOut:
    """The caller as ``/me`` shows it; ``is_operator`` is the credential's power, not the account's."""
    orgs = [OrgRole(name=o.name, display_name=o.display_name, role=m.role)
            for o, m in identity.memberships(session, p.user_id)]
    return MeOut(user_id=p.user_id, email=p.user_email, name=identity.user_name(session, p.user_id),
                 org=p.org_name,
                 role=p.role.value, via=p.via.split(":")[0], is_operator=p.is_operator,
                 organizations=orgs)


def set_cookie(response: Response, secret: str, request: Request, hours: int) -> None:
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", max_age=hours * 3600, path="/")


@router.post("/login", response_model=LoginOut)
@rule("credential")
def login(body: LoginIn, session: SessionDep, ctx: Ctx, svc: Svc, request: Request,
          response: Response) -> LoginOut:
    """Exchange email and password for a web session (cookie) and a session token. Throttled per
    account and per client address: 429 with ``Retry-After`` after repeated failures."""
    ctx.details = {"email": body.email}
    p, ws, secret = credentials.password_login(session, svc.session_factory, body.email, body.password,
                                               client_address(request), svc.settings.session_hours)
    ctx.principal = p
    set_cookie(response, secret, request, svc.settings.session_hours)
    return LoginOut(**me_view(session, p).model_dump(), session_token=secret, expires_at=ws.expires_at)


@router.post("/logout", status_code=204)
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


@router.post("/switch-org", response_model=MeOut)
@rule("self")
def switch_org(body: SwitchIn, p: Caller, session: SessionDep, request: Request) -> MeOut:
    """Make another of your organizations the current one for this web session."""
    from consortium.api.deps import bearer

    if not p.via.startswith("session:"):
        raise InvalidInput("API tokens are bound to one organization", hint="use a token of that organization")
    cred = bearer(request)
    assert cred is not None
    newp = credentials.switch_org(session, cred[1], body.org)
    request.state.ctx.principal = newp
    return me_view(session, newp)


me_router = APIRouter(tags=["auth"])


@me_router.get("/me", response_model=MeOut)
@rule("self")
def me(p: Caller, session: SessionDep) -> MeOut:
    """Who the credential acts as: user, current organization and role, and all memberships."""
    return me_view(session, p)
