"""Typed dependencies: the unit of work, the caller, and role checks (``SessionDep``, ``Caller``, ...)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.requests import cookie_parser

from consortium.api.context import RequestContext
from consortium.errors import NotFound, Unauthenticated
from consortium.governance import control_cache, credentials
from consortium.governance.audit import EventDraft, wrote
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.services import Services

log = logging.getLogger("consortium.api")

SESSION_COOKIE = "consortium_session"
ORG_HEADER = "x-consortium-org"


def services(request: Request) -> Services:
    svc: Services = request.app.state.services  # Starlette's state holds Any
    return svc


def context(request: Request) -> RequestContext:
    ctx: RequestContext = request.state.ctx
    return ctx


async def unit_of_work(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: a change and its audit event commit together, before the
    response is sent; any error rolls both back (the failure is audited by the error handler).
    The event is staged in the outbox (``Hub.audit_staged``), so the transaction never holds the
    chain's head, and it is on the chain, through the group commit, before the response goes out.

    A request that changed nothing (``audit.wrote``) ends its read transaction and hands its event
    to the hub's group commit (``audit.GroupCommit``), where it shares one transaction and one
    commit with the events of concurrent requests; its response too waits until the event is
    committed, so every answered access is on the durable chain.

    It runs on the event loop (opening a session does no I/O): the commit of a change goes to the
    thread pool, a read's event is waited for without a thread (``GroupCommit.submit_async``),
    and only a read on another database than SQLite (a round trip to end it) takes a thread hop."""
    svc = services(request)
    ctx = context(request)
    session = svc.session_factory()
    try:
        yield session
        drafts = []
        if ctx.audit:
            if ctx.action is None:
                route = request.scope.get("route")
                ctx.action = getattr(route, "name", None) or "request"
            drafts = [ctx.draft("ok"), *ctx.extra]
        if wrote(session) or not drafts:
            await run_in_threadpool(_commit, svc, session, drafts)
            if drafts:  # durable with the change; on the chain, for the caller's next read, before the answer
                try:
                    await svc.audit_chained_async()
                except Exception:  # staged events stay for the next batch; the change is done
                    log.exception("request %s: staged audit events not chained yet", ctx.request_id)
        else:
            # nothing to write: end the read before waiting on the group
            if _local(session):
                session.rollback()  # SQLite: no round trip, a read holds no lock to release
            else:
                await run_in_threadpool(session.rollback)
            await svc.audit_now_async(drafts)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _commit(svc: Services, session: Session, drafts: list[EventDraft]) -> None:
    svc.audit_staged(session, drafts)
    session.commit()


def _local(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


async def _services_dep(request: Request) -> Services:
    return services(request)


async def _context_dep(request: Request) -> RequestContext:
    return context(request)


SessionDep = Annotated[Session, Depends(unit_of_work, scope="function")]
Ctx = Annotated[RequestContext, Depends(_context_dep)]
Svc = Annotated[Services, Depends(_services_dep)]


def credential_from(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``("token", secret)`` from an ``Authorization: Bearer`` header, else ``("session", id)``
    from the session cookie, else None."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return "token", auth[7:].strip()
    cookie = headers.get("cookie")
    if cookie:
        session = cookie_parser(cookie).get(SESSION_COOKIE)
        if session:
            return "session", session
    return None


def client_address(request: Request) -> str:
    """The caller's address (as the server sees it: behind a proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips``), the subject of per-address throttles."""
    return request.client.host if request.client else "unknown"


def bearer(request: Request) -> tuple[str, str] | None:
    return credential_from(request.headers)


async def caller(request: Request, session: SessionDep) -> Principal:
    """The request's principal, from the hub's cache on the event loop when it answers alone
    (``credentials.cached_principal``), else resolved in the thread pool (a database read)."""
    ctx = context(request)
    cred = bearer(request)
    if cred is None:
        raise Unauthenticated("this route needs a credential",
                              hint="send 'Authorization: Bearer <API token>' or log in")
    kind, secret = cred
    if kind == "token" and secret.startswith("csm_ses_"):
        kind = "session"  # the SDK may carry a session token as a bearer
    org = request.headers.get(ORG_HEADER) if kind == "session" else None
    cache = control_cache.of(session)
    p = credentials.cached_principal(cache, kind, secret, org) if cache is not None else None
    if p is None:
        p = await run_in_threadpool(_resolve, session, kind, secret, org)
    ctx.principal = p
    if cred[0] == "session" and request.method not in SAFE_METHODS and request.url.path.startswith(("/api/", "/v2")):
        _check_csrf(request, p)  # the UI's own form routes check the token in the form instead
    return p


def _resolve(session: Session, kind: str, secret: str, org: str | None) -> Principal:
    if kind == "token":
        return credentials.resolve_token(session, secret)
    return credentials.resolve_session(session, secret, org)


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _check_csrf(request: Request, p: Principal) -> None:
    require_csrf(services(request).settings.secret_key, request.headers, p)


def require_csrf(secret_key: str, headers: Mapping[str, str], p: Principal) -> None:
    """A change sent with the session *cookie* must carry the page's CSRF token (X-CSRF-Token);
    bearer credentials are never sent by a browser on its own, so they are exempt."""
    from consortium.errors import PermissionDenied
    from consortium.governance.secrets import same, sign

    given = headers.get("x-csrf-token", "")
    want = sign(secret_key, f"csrf:{p.via}")
    if not given or not same(given, want):
        raise PermissionDenied("this change was sent with a browser session but without its CSRF token",
                               hint="send the X-CSRF-Token header from the page, or use an API token")


Caller = Annotated[Principal, Depends(caller)]


def of_my_org(rtype: str, resource_id: str, owner_org_id: str | None, p: Principal,
              ctx: RequestContext) -> str:
    """The ownership check of a path dependency: ``resource_id`` if its owner (``owner_org_id``, as
    its service tells; None: there is no such resource) is the caller's organization, else the same
    404 as a missing one. The resource is recorded first, so that the owner's audit trail shows a
    refused attempt too."""
    if owner_org_id is not None:
        ctx.resource(rtype, resource_id, owner_org_id)
    if owner_org_id != p.org_id:
        raise NotFound(f"{rtype} {resource_id!r} not found")
    return resource_id


def role_at_least(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(p: Caller) -> Principal:
        p.require(role)
        return p

    return check


async def operator(p: Caller) -> Principal:
    """A hub operator acting through an operator-level credential (``Principal.is_operator``)."""
    p.require_operator()
    return p


Viewer = Annotated[Principal, Depends(role_at_least(Role.viewer))]
Member = Annotated[Principal, Depends(role_at_least(Role.member))]
Admin = Annotated[Principal, Depends(role_at_least(Role.admin))]
Operator = Annotated[Principal, Depends(operator)]
