"""Errors to HTTP: the families' statuses (``consortium.api.status``), one response shape for every error.

``{"error": {"code": "not_found", "message": "...", "hint": "..."}}``. Failures are audited here,
in their own transaction, since the request's own unit of work was rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from consortium.api.status import status_of
from consortium.errors import ConsortiumError, QuotaExceeded

log = logging.getLogger("consortium.api")

STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
                403: "permission_denied", 413: "payload_too_large", 400: "bad_request"}


def error_body(code: str, message: str, hint: str | None = None, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if hint:
        err["hint"] = hint
    if details is not None:
        err["details"] = details
    return {"error": err}


async def _audit_failure(request: Request, outcome: str) -> None:
    ctx = getattr(request.state, "ctx", None)
    services = getattr(request.app.state, "services", None)
    if ctx is None or services is None or not ctx.audit or request.url.path in ("/healthz", "/readyz"):
        return
    if ctx.action is None:
        route = request.scope.get("route")
        ctx.action = getattr(route, "name", None) or "request"
    try:
        await run_in_threadpool(services.audit_now, [ctx.draft(outcome)])
    except Exception:  # never mask the original error; the failure is logged instead
        log.exception("could not audit a failed request %s", ctx.request_id)


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc)


async def error_response(request: Request, exc: ConsortiumError) -> JSONResponse:
    """The response for one of the project's errors (audited first); the app's handler and the
    serving front (``consortium.api.front``) both answer with it."""
    await _audit_failure(request, exc.code)
    headers = {}
    status = status_of(exc)
    if isinstance(exc, QuotaExceeded):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        log.error("request %s failed: %s", getattr(request.state, "ctx", None), exc)
    return JSONResponse(error_body(exc.code, exc.message, exc.hint, exc.details),
                        status_code=status, headers=headers)


async def unexpected_response(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that names the request id (the error is logged and the failure audited)."""
    ctx = getattr(request.state, "ctx", None)
    log.error("unexpected error in request %s", getattr(ctx, "request_id", "?"), exc_info=exc)
    await _audit_failure(request, "internal_error")
    return JSONResponse(error_body("internal_error", "the hub hit an unexpected error; nothing was "
                                   "changed", hint=f"report request id "
                                   f"{getattr(ctx, 'request_id', '?')} to the operator"),
                        status_code=500)


async def out_of_range_response(request: Request, exc: Exception) -> JSONResponse:
    """A 400 for a number too large for the database or for a date (``OverflowError``, SQL
    ``DataError``). A safety net: the routes' typed parameters (``consortium.api.schemas``) refuse
    such numbers first, with a 422 naming the field; anything reaching here is logged to be fixed."""
    ctx = getattr(request.state, "ctx", None)
    log.warning("request %s: out-of-range value reached %s: %s", getattr(ctx, "request_id", "?"),
                type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    await _audit_failure(request, "bad_request")
    return JSONResponse(error_body("bad_request", "a number in the request is out of range",
                                   hint="check the numbers in the request against the bounds in the API "
                                        "schema at /docs"),
                        status_code=400)


async def conflict_response(request: Request, exc: Exception) -> JSONResponse:
    """A 409 for a uniqueness or reference constraint the database refused (two requests creating
    the same name at once, a row deleted under a reference). A safety net: the services check
    first and name the conflict; one reaching here lost a race with a concurrent request."""
    ctx = getattr(request.state, "ctx", None)
    log.warning("request %s: the database refused a change: %s", getattr(ctx, "request_id", "?"),
                str(getattr(exc, "orig", exc)).splitlines()[0])
    await _audit_failure(request, "conflict")
    return JSONResponse(error_body("conflict", "the change conflicts with another one made at the same "
                                   "moment (a name taken, or a resource removed); nothing was changed",
                                   hint="read the resource again and retry"),
                        status_code=409)


# a browser asking for a page that does not exist: the page to show, or None for the JSON error
NotFoundPage = Callable[[Request], Response | None]


def install(app: FastAPI, not_found_page: NotFoundPage | None = None) -> None:
    """The error handlers; a 404 asks ``not_found_page`` first (the web UI's, passed in by
    ``consortium.web.create_app``: the API imports no UI)."""
    # Starlette calls a handler only with the class it was added for; its hint wants one for Exception
    app.add_exception_handler(ConsortiumError, error_response)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_response)
    app.add_exception_handler(OverflowError, out_of_range_response)
    app.add_exception_handler(DataError, out_of_range_response)
    app.add_exception_handler(IntegrityError, conflict_response)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = _format_loc(tuple(e.get("loc", ())))
            if e.get("type") == "json_invalid":
                problems.append(f"the body is not valid JSON ({e.get('ctx', {}).get('error', e['msg'])})")
            elif e.get("type") == "extra_forbidden":
                problems.append(f"{where}: unknown field; remove it")
            else:
                problems.append(f"{where}: {e['msg']}")
        await _audit_failure(request, "invalid_input")
        return JSONResponse(error_body("invalid_input", "; ".join(problems) or "invalid request",
                                       hint="see the API schema at /docs",
                                       details=[{"loc": list(e.get("loc", ())), "msg": e["msg"]}
                                                for e in exc.errors()]),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not_found_page is not None:
            page = await run_in_threadpool(not_found_page, request)  # a browser asking for a page: the UI's 404
            if page is not None:
                return page
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette names the methods of the first route matched only
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.url.path))}
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods of the resource at ``path`` (a 405's Allow header): those of every route whose
    template matches it, the most literal templates only (``/things/new`` is not ``/things/{name}``).

    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> _ = app.get("/things/{name}")(lambda name: name), app.delete("/things/{name}")(lambda name: name)
    >>> _ = app.post("/things/new")(lambda: None)
    >>> allowed_methods(app, "/things/a"), allowed_methods(app, "/things/new")
    (['DELETE', 'GET'], ['POST'])
    """
    from fastapi.routing import iter_route_contexts

    by_params: dict[int, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and route.methods and regex.match(path):
            by_params.setdefault(str(route.path).count("{"), set()).update(route.methods)
    return sorted(by_params[min(by_params)]) if by_params else []
