"""Log in, log out, switch organization.

The login form works with JavaScript (``login.js`` posts JSON to ``/api/v1/auth/login``) and
without it: it is a ``method="post"`` form to ``POST /login``, which sets the session cookie and
redirects (303) to ``next``. That form POST is guarded against login CSRF (an attacker's page
logging the victim into the attacker's account) by a double-submit token: ``GET /login`` sets a
random nonce in a ``SameSite=Strict`` cookie and puts its HMAC in the form; a POST must carry
both, and a cross-site ``Origin`` is refused too. ``next`` is only ever a same-origin path.
"""

from __future__ import annotations

import secrets
import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from consortium.api.access import rule
from consortium.api.deps import SESSION_COOKIE, Caller, Ctx, SessionDep, Svc, bearer, client_address
from consortium.api.routes.auth import set_cookie
from consortium.api.status import status_of
from consortium.errors import ConsortiumError, PermissionDenied, QuotaExceeded, Unauthenticated
from consortium.governance import credentials
from consortium.governance.secrets import same, sign
from consortium.ui.render import check_csrf, page
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)
LOGIN_COOKIE = "consortium_login"  # the login form's CSRF nonce (not a credential)
MAX_NEXT = 2000


def safe_next(target: str | None) -> str:
    r"""``target`` if it is a same-origin absolute path, else ``/``.

    Browsers drop tabs and newlines from URLs and read ``\`` as ``/``, so ``/\t/evil`` or
    ``/\evil`` would become ``//evil`` (another site): any whitespace, control character or
    backslash refuses the target outright, as do ``//host``, schemes and anything with a host.

    >>> [safe_next(t) for t in ("/jobs?state=failed", "/\t/127.0.0.1:8101/pwned", "/\n/evil", "//evil",
    ...  "/\\evil", "https://evil", "javascript:alert(1)", "jobs", "", None)]
    ['/jobs?state=failed', '/', '/', '/', '/', '/', '/', '/', '/', '/']
    """
    if not target or len(target) > MAX_NEXT or "\\" in target:
        return "/"
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in target):
        return "/"
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _login_csrf(secret_key: str, nonce: str) -> str:
    return sign(secret_key, f"login-csrf:{nonce}")


def login_form(request: Request, svc: Svc, next_path: str, error: ConsortiumError | None = None,
               email: str = "") -> Response:
    """The login page with a fresh CSRF nonce (cookie) and its token (form), and an error if any."""
    nonce = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, title="Log in", next=next_path,
                    login_csrf=_login_csrf(svc.settings.secret_key, nonce), email=email,
                    error=error, status_code=status_of(error) if error else 200)
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https", max_age=3600)
    if isinstance(error, QuotaExceeded):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def check_login_csrf(request: Request, secret_key: str, submitted: str) -> None:
    """Refuse a login form POST that did not come from our own login page (login CSRF)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if (origin not in (None, own) or not nonce or not submitted
            or not same(submitted, _login_csrf(secret_key, nonce))):
        raise PermissionDenied("the login form's security token is missing or stale",
                               hint="reload the login page and log in again")


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
    return login_form(request, svc, safe_next(next))


@router.post("/login")
@rule("page_public")
def login_submit(request: Request, session: SessionDep, svc: Svc, ctx: Ctx,
                 email: Annotated[str, Form(max_length=254)], password: Annotated[str, Form(max_length=200)],
                 csrf: Annotated[str, Form(max_length=200)] = "",
                 next: Annotated[str, Form(max_length=MAX_NEXT)] = "/") -> Response:
    """The login form without JavaScript: a session cookie and a 303 to ``next`` (a same-origin
    path), or the form again with the error (401, 403, 422, or 429 with ``Retry-After``)."""
    ctx.action, ctx.details = "ui.login", {"email": email}
    target = safe_next(next)
    hours = svc.settings.session_hours
    try:
        check_login_csrf(request, svc.settings.secret_key, csrf)
        p, _, secret = credentials.password_login(session, svc.session_factory, email, password,
                                                  client_address(request), hours)
    except ConsortiumError as e:
        session.rollback()
        ctx.audit = False  # audited here, once, as any refusal is
        svc.audit_now([ctx.draft(e.code)])
        return login_form(request, svc, target, e, email)
    ctx.principal = p
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, secret, request, hours)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


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

