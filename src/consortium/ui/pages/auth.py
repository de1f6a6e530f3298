"""Log in (the form posts to ``/api/v1/auth/login``, which sets the session cookie), log out, switch org."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from consortium.api.access import rule
from consortium.api.deps import SESSION_COOKIE, Caller, Ctx, SessionDep, Svc, bearer
from consortium.errors import Unauthenticated
from consortium.governance import credentials
from consortium.ui.render import check_csrf, page
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``/jobs`` yes, ``//evil.example`` or ``https://...`` no."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
@rule("page_public")
def login_page(request: Request, svc: Svc, next: str = "/") -> Response:
    """The login form; a browser that is already logged in goes on to ``next``."""
    request.state.ctx.audit = False
    cred = bearer(request)
    if cred is not None and cred[0] == "session":
        with svc.session_factory() as s:
            try:
                credentials.resolve_session(s, cred[1])
                return RedirectResponse(safe_next(next), status_code=303)
            except Unauthenticated:
                pass
    return page(request, "login.html", None, title="Log in", next=safe_next(next))


@router.post("/logout")
@rule("page")
def logout(request: Request, p: Caller, session: SessionDep, svc: Svc, ctx: Ctx,
           csrf: Annotated[str, Form()] = "") -> Response:
    """End the web session and clear its cookie."""
    check_csrf(request, svc.settings.secret_key, p, csrf)
    cred = bearer(request)
    if cred and p.via.startswith("session:"):
        credentials.end_session(session, cred[1])
    ctx.action = "ui.logout"
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/switch-org")
@rule("page")
def switch_org(request: Request, p: Caller, session: SessionDep, svc: Svc, ctx: Ctx,
               org: Annotated[str, Form(max_length=40)], csrf: Annotated[str, Form()] = "") -> Response:
    """Make another of your organizations the current one, then show its overview."""
    check_csrf(request, svc.settings.secret_key, p, csrf)
    from consortium.errors import InvalidInput

    cred = bearer(request)
    if cred is None or not p.via.startswith("session:"):
        raise InvalidInput("API tokens are bound to one organization", hint="log in with your password")
    newp = credentials.switch_org(session, cred[1], org)
    ctx.principal = newp
    ctx.action = "ui.switch_org"
    ctx.details = {"org": org}
    return RedirectResponse("/", status_code=303)

