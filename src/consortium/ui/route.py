"""``PageRoute``: page routes answer errors as pages, and send anonymous browsers to the login page.

The API's error handlers answer JSON; a browser following a link wants a page. A route of this
class swaps in its own exception handlers for the request: ``Unauthenticated`` becomes a 303
redirect to ``/login?next=...``; any other error renders the styled error page with the error's
status, message and hint, and an unexpected exception the same page with the request id (logged,
never a stack trace). The handlers run where the app's would, after the request's dependencies
have closed, so the unit of work rolls back and audits nothing as ``ok``; the failure is audited
once, like an API refusal.

Page views are audited like API reads: a page route is named ``ui.<page>`` and the request's unit
of work writes that name as the event's action, with the caller as actor and the resource its
dependency resolved (``ctx.resource``). A browser sent to the login page is audited as
``unauthenticated``, as an API call without a credential is.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from consortium.api.errors import _audit_failure
from consortium.api.status import status_of
from consortium.errors import ConsortiumError, Unauthenticated
from consortium.ui.render import error_page

log = logging.getLogger("consortium.ui")
HANDLERS = "starlette.exception_handlers"


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/"
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


async def to_login(request: Request, exc: Exception) -> Response:
    await _audit_failure(request, "unauthenticated")
    return login_redirect(request)


async def refused(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ConsortiumError):  # registered for ConsortiumError only
        raise exc
    await _audit_failure(request, exc.code)
    status = status_of(exc)
    if status >= 500:
        log.error("page request %s failed: %s", _request_id(request), exc)
    return error_page(request, status, exc.message, exc.hint)


async def invalid_form(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    await _audit_failure(request, "invalid_input")
    problems = "; ".join(f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err['msg']}" for err in exc.errors())
    return error_page(request, 422, f"the form is incomplete: {problems}", "fill in every field and submit again")


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error in page request %s", _request_id(request), exc_info=exc)
    await _audit_failure(request, "internal_error")
    return error_page(request, 500, "the hub hit an unexpected error; nothing was changed",
                      f"report request id {_request_id(request)} to the operator")


def _request_id(request: Request) -> str:
    return str(getattr(getattr(request.state, "ctx", None), "request_id", "?"))


PAGE_HANDLERS = {Unauthenticated: to_login, ConsortiumError: refused, RequestValidationError: invalid_form,
                 Exception: unexpected}


class PageRoute(APIRoute):
    """An HTML route: errors become pages, a missing or expired login a redirect to ``/login``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        handlers, status = scope.get(HANDLERS) or ({}, {})
        scope[HANDLERS] = ({**handlers, **PAGE_HANDLERS}, status)  # read when this route's app starts
        try:
            await super().handle(scope, receive, send)
        finally:
            scope[HANDLERS] = (handlers, status)
