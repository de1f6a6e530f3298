"""Rendering pages: the Jinja2 environment, the CSRF token, the shared page context, error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from consortium.api.deps import SESSION_COOKIE
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.secrets import same, sign

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

# Side navigation, by lifecycle stage: (stage, [(label, href, key)]).
NAV = [
    ("Organization", [("Overview", "/", "overview")]),
    ("Data", [("Datasets", "/datasets", "datasets")]),
    ("Training", [("Jobs", "/jobs", "jobs")]),
    ("Evaluation", [("Models", "/models", "models")]),
    ("Deployment", [("Deployments", "/deployments", "deployments")]),
    ("Collaboration", [("Projects", "/projects", "projects")]),
    ("Governance", [("Audit log", "/audit", "audit")]),
]


def csrf_token(secret_key: str, p: Principal) -> str:
    """The CSRF token of a caller: an HMAC of its session (or token) id; stable for the session.

    >>> from consortium.governance.roles import Role
    >>> p = Principal("u", "a@b.c", "o", "org", Role.viewer, "session:ses_1")
    >>> len(csrf_token("k" * 32, p))
    64
    """
    return sign(secret_key, f"csrf:{p.via}")


def check_csrf(request: Request, secret_key: str, p: Principal, submitted: str) -> None:
    """Refuse a state-changing form sent with the session cookie but without the page's token.

    Bearer-token callers are exempt: a token is never sent by the browser on its own."""
    from consortium.errors import PermissionDenied

    if not p.via.startswith("session:"):
        return
    given = submitted or request.headers.get(CSRF_HEADER, "")
    if not given or not same(given, csrf_token(secret_key, p)):
        raise PermissionDenied("the form's security token is missing or stale",
                               hint="reload the page and submit the form again")


def page(request: Request, template: str, p: Principal | None, active: str = "", title: str = "",
         status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """Render ``template`` with the layout's context (caller, organizations, CSRF token, navigation)."""
    svc = request.app.state.services
    orgs: list[dict[str, str]] = []
    if p is not None:
        orgs = _memberships(svc, p)
    base = {"request": request, "me": p, "orgs": orgs, "nav": NAV, "active": active, "title": title,
            "csrf": csrf_token(svc.settings.secret_key, p) if p else "",
            "is_session": bool(p and p.via.startswith("session:")),
            "is_member": bool(p and p.role.at_least(Role.member)),
            "is_admin": bool(p and p.role.at_least(Role.admin))}
    return TEMPLATES.TemplateResponse(request, template, {**base, **ctx}, status_code=status_code,
                                      headers={"cache-control": "no-store"})


def _memberships(svc: Any, p: Principal) -> list[dict[str, str]]:
    from consortium.governance import identity

    with svc.session_factory() as s:
        return [{"name": o.name, "display_name": o.display_name or o.name, "role": m.role}
                for o, m in identity.memberships(s, p.user_id)]


def error_page(request: Request, status: int, message: str, hint: str | None = None) -> HTMLResponse:
    """The styled error page (404, 403, 400, ...) with the layout when the caller is known."""
    ctx = getattr(request.state, "ctx", None)
    p = getattr(ctx, "principal", None)
    titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 413: "Too large", 429: "Slow down"}
    title = titles.get(status, "Something went wrong" if status >= 500 else "Cannot do that")
    try:
        return page(request, "error.html", p, title=title, status_code=status, status=status,
                    message=message, hint=hint, request_id=getattr(ctx, "request_id", ""))
    except Exception:  # noqa: BLE001 - the layout itself failed: a bare page, still no stack trace
        return HTMLResponse(f"<h1>{status} {title}</h1>", status_code=status)


NOT_PAGES = ("/api/", "/v2", "/metrics", "/healthz", "/readyz", "/static/", "/docs", "/redoc", "/openapi.json")


def unknown_page(request: Request) -> HTMLResponse | None:
    """The styled 404 page when a browser asks for a page that does not exist; None for any other
    request (API clients, ``fetch`` from our pages, assets), which keeps the JSON error.

    >>> from starlette.requests import Request
    >>> api = Request({"type": "http", "method": "GET", "path": "/api/v1/nope", "headers": [(b"accept", b"text/html")]})
    >>> unknown_page(api) is None
    True
    """
    accept = request.headers.get("accept", "")
    if request.method not in ("GET", "HEAD") or request.url.path.startswith(NOT_PAGES) or "text/html" not in accept:
        return None
    ctx = getattr(request.state, "ctx", None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if ctx is not None and ctx.principal is None and cookie:  # the layout for a logged-in browser
        from consortium.errors import Unauthenticated
        from consortium.governance import credentials

        with request.app.state.services.session_factory() as s:
            try:
                ctx.principal = credentials.resolve_session(s, cookie)
            except Unauthenticated:
                pass
    return error_page(request, 404, f"there is no page at {request.url.path}",
                      "check the address, or start again from the overview")


def has_route(request: Request, path: str, method: str = "GET") -> bool:
    """Whether the app serves ``method path`` (a template path such as ``/api/v1/x/{id}``): pages
    show a stage's optional panels (drift, feedback, explanations) only once its API exists.
    Included routers are walked (``route_table``); the answer is cached on the app."""
    routes = getattr(request.app.state, "ui_route_set", None)
    if routes is None:
        from consortium.api.access import route_table

        routes = frozenset((m, r.path) for r in route_table(request.app) for m in r.methods)
        request.app.state.ui_route_set = routes
    return (method, path) in routes
