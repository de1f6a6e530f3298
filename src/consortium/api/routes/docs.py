"""The OpenAPI schema and its Swagger page, behind a credential like every other route.

Swagger UI's script, stylesheet and icon come from the installed ``swagger_ui_bundle`` package
(pinned in requirements.txt), served under ``/docs/assets/``, so ``/docs`` works offline and its
Content Security Policy allows no other site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from consortium.api.access import rule
from consortium.api.deps import Caller
from consortium.api.headers import DOCS_POLICY, csp_nonce, use_policy
from consortium.errors import NotFound

router = APIRouter(tags=["docs"], include_in_schema=False)
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}


def swagger_dir() -> Path:
    """Swagger UI's files inside the installed ``swagger_ui_bundle`` package."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


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
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="Consortium API",
                               swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs/assets/swagger-ui.css",
                               swagger_favicon_url="/docs/assets/favicon-32x32.png")
    use_policy(request, DOCS_POLICY)  # its bundle is served from here; its one inline script has a nonce
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{csp_nonce(request)}">')
    return HTMLResponse(html)


@router.get("/docs/assets/{name}")
@rule("public")
def swagger_asset(name: str, request: Request) -> FileResponse:
    """One of Swagger UI's files (script, stylesheet, icon) from the installed package."""
    request.state.ctx.audit = False
    path = swagger_dir() / name
    if name not in ASSETS or not path.is_file():
        raise NotFound(f"no Swagger UI asset {name!r}",
                       hint="reinstall the pinned swagger-ui-bundle: pip install -r requirements.txt")
    return FileResponse(path, media_type=ASSETS[name], headers={"cache-control": "public, max-age=86400"})
