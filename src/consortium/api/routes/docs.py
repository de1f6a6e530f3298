"""The OpenAPI schema and its Swagger page, behind a credential like every other route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from consortium.api.access import rule
from consortium.api.deps import Caller
from consortium.api.headers import DOCS_POLICY, csp_nonce, use_policy

router = APIRouter(tags=["docs"], include_in_schema=False)


@router.get("/openapi.json")
@rule("self")
def openapi(request: Request, p: Caller) -> dict[str, Any]:
    request.state.ctx.audit = False
    spec: dict[str, Any] = request.app.openapi()
    return spec


@router.get("/docs")
@rule("self")
def swagger(request: Request, p: Caller) -> HTMLResponse:
    request.state.ctx.audit = False
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="Consortium API")
    use_policy(request, DOCS_POLICY)  # its bundle comes from the CDN; its one inline script has a nonce
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{csp_nonce(request)}">')
    return HTMLResponse(html)
