"""Static assets: our CSS and JavaScript, and plotly.js served from the installed ``plotly`` package."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from consortium.api.access import rule
from consortium.errors import NotFound
from consortium.ui.render import HERE
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)
STATIC = (HERE / "static").resolve()
TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def plotly_bundle() -> Path:
    """``plotly.min.js`` inside the installed plotly package (``plotly/package_data``)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise NotFound("plotly.min.js is missing from the installed plotly package",
                       hint="reinstall the pinned plotly version: pip install -r requirements.txt")
    return path


@router.get("/static/vendor/plotly.min.js")
@rule("page_public")
def plotly_js(request: Request) -> FileResponse:
    request.state.ctx.audit = False
    return FileResponse(plotly_bundle(), media_type="text/javascript",
                        headers={"cache-control": "public, max-age=86400"})


@router.get("/static/{asset:path}")
@rule("page_public")
def static_asset(asset: str, request: Request) -> FileResponse:
    """A file under ``consortium/ui/static`` (CSS, JavaScript, icons); nothing outside it."""
    request.state.ctx.audit = False
    path = (STATIC / asset).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in TYPES:
        raise NotFound(f"no asset {asset!r}")
    return FileResponse(path, media_type=TYPES[path.suffix], headers={"cache-control": "no-cache"})
