"""The OpenAPI schema and its Swagger page, behind a credential like every other route.

Swagger UI's script, stylesheet and icon come from the installed ``swagger_ui_bundle`` package
(pinned in requirements.txt), served under ``/docs/assets/``, so ``/docs`` works offline and its
Content Security Policy allows no other site.

That package's Swagger UI (4.15) renders OpenAPI 3.0 only, and FastAPI writes 3.1, so the page reads
``/docs/openapi-3.0.json``: the same spec written down to 3.0 by ``as_openapi_30`` (home-made: no
package does this one conversion; a null in a type or ``anyOf`` becomes ``nullable``, ``const`` a
one-value ``enum``, a list of ``examples`` one ``example``, a numeric ``exclusiveMinimum`` the 3.0
pair). ``/openapi.json`` stays 3.1 for generators and clients."""

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
NULL = {"type": "null"}
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}


def swagger_dir() -> Path:
    """Swagger UI's files inside the installed ``swagger_ui_bundle`` package (its
    ``vendor/swagger-ui-<version>``), found without importing it."""
    from importlib.util import find_spec

    spec = find_spec("swagger_ui_bundle")
    found = sorted(Path(spec.origin).parent.glob("vendor/swagger-ui-*")) if spec and spec.origin else []
    if not found:
        raise NotFound("the swagger_ui_bundle package is not installed",
                       hint="install the pinned requirements: pip install -r requirements.txt")
    return found[-1]


@router.get("/openapi.json")
@rule("self")
def openapi(request: Request, p: Caller) -> dict[str, Any]:
    request.state.ctx.audit = False
    spec: dict[str, Any] = request.app.openapi()
    return spec


def as_openapi_30(node: Any) -> Any:
    """An OpenAPI 3.1 document (or part of one) written as 3.0, for Swagger UI 4.

    >>> as_openapi_30({"openapi": "3.1.0", "s": {"anyOf": [{"type": "string"}, {"type": "null"}], "const": 1}})
    {'openapi': '3.0.3', 's': {'type': 'string', 'enum': [1], 'nullable': True}}
    >>> as_openapi_30({"type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [3]})
    {'exclusiveMinimum': True, 'example': 3, 'minimum': 0, 'nullable': True, 'type': 'integer'}
    """
    if isinstance(node, list):
        return [as_openapi_30(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_openapi_30(v) for k, v in node.items() if k not in ("anyOf", "oneOf", "type", "const")}
    if isinstance(node.get("openapi"), str):
        out["openapi"] = "3.0.3"
    if "const" in node:
        out["enum"] = [node["const"]]
    if isinstance(node.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(node["exclusiveMinimum"], bool):
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if isinstance(node.get("exclusiveMaximum"), int | float) and not isinstance(node["exclusiveMaximum"], bool):
        out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True
    kind = node.get("type")
    if isinstance(kind, list):
        rest = [t for t in kind if t != "null"]
        if len(rest) < len(kind):
            out["nullable"] = True
        kind = rest[0] if len(rest) == 1 else None
        if len(rest) > 1:
            out["anyOf"] = [{"type": t} for t in rest]
    if kind is not None:
        out["type"] = kind
    for key in ("anyOf", "oneOf"):
        if key not in node:
            continue
        options = [as_openapi_30(x) for x in node[key] if x != NULL]
        if len(options) < len(node[key]):
            out["nullable"] = True
        if len(options) == 1 and "$ref" not in options[0]:
            out = {**options[0], **out}
        elif len(options) == 1:
            out["allOf"] = options
        else:
            out[key] = options
    return out


@router.get("/docs/openapi-3.0.json")
@rule("self")
def openapi_30(request: Request, p: Caller) -> dict[str, Any]:
    """The OpenAPI spec written as 3.0 for the bundled Swagger UI (``/openapi.json`` is 3.1)."""
    request.state.ctx.audit = False
    spec: dict[str, Any] = as_openapi_30(request.app.openapi())
    return spec


@router.get("/docs")
@rule("self")
def swagger(request: Request, p: Caller) -> HTMLResponse:
    request.state.ctx.audit = False
    page = get_swagger_ui_html(openapi_url="/docs/openapi-3.0.json", title="Consortium API",
                               swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs/assets/swagger-ui.css",
                               swagger_favicon_url="/docs/assets/favicon-32x32.png")
    use_policy(request, DOCS_POLICY)  # its bundle is served from here; its one inline script has a nonce
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{csp_nonce(request)}">')
    return HTMLResponse(html)


def _asset_route(name: str, media_type: str) -> None:
    """``GET /docs/assets/<name>``: one of Swagger UI's files (script, stylesheet, icon) from the
    installed package; one route per file, so nothing else under the package's folder is served."""

    @router.get(f"/docs/assets/{name}", name=f"docs_asset_{name}")
    @rule("public")
    def swagger_asset(request: Request) -> FileResponse:
        request.state.ctx.audit = False
        path = swagger_dir() / name
        if not path.is_file():
            raise NotFound(f"Swagger UI's {name} is missing from the installed swagger_ui_bundle",
                           hint="reinstall the pinned swagger-ui-bundle: pip install -r requirements.txt")
        return FileResponse(path, media_type=media_type, headers={"cache-control": "public, max-age=86400"})


for _name, _type in ASSETS.items():
    _asset_route(_name, _type)
