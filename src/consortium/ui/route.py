"""``PageRoute``: page routes answer errors as pages, and send anonymous browsers to the login page.

The API's error handlers answer JSON; a browser following a link wants a page. A route of this
class catches the project's errors raised by its dependencies or handler: ``Unauthenticated``
becomes a 303 redirect to ``/login?next=...``; any other error renders the styled error page
with the error's status, message and hint (refusals are audited like API refusals).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from consortium.api.errors import _audit_failure
from consortium.errors import ConsortiumError, Unauthenticated
from consortium.ui.render import error_page


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/"
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


class PageRoute(APIRoute):
    """An HTML route: errors become pages, a missing or expired login a redirect to ``/login``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                return login_redirect(request)
            except ConsortiumError as e:
                await _audit_failure(request, e.code)
                return error_page(request, e.status, e.message, e.hint)
            except RequestValidationError as e:
                problems = "; ".join(f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err['msg']}"
                                     for err in e.errors())
                return error_page(request, 422, f"the form is incomplete: {problems}",
                                  "fill in every field and submit again")

        return handle
