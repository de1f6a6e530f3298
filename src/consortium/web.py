"""The hub's ASGI app: the HTTP API (``consortium.api``) and the web UI (``consortium.ui``) over one
``Services``. The UI's pages are built on the API's dependencies and access rules, so the app that
holds both is put together here, above them; nothing global at import.

>>> from consortium.config import Settings
>>> app = create_app(Settings(home="/tmp/consortium-doc"))
>>> app.title
'Consortium'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from consortium.api import app as api
from consortium.api import route_index
from consortium.api.front import ServingFront
from consortium.api.headers import SecurityHeaders
from consortium.config import Settings
from consortium.monitoring.prometheus import ApiRequestMetrics, HubMetrics
from consortium.procutil import settle_gc
from consortium.services import Services
from consortium.ui import ui_router
from consortium.ui.render import unknown_page
from consortium.version import __version__


class HubApp(FastAPI):
    """FastAPI with the serving front (``consortium.api.front``) outside every other layer, even
    Starlette's error middleware: the front answers its own errors and unexpected failures. The
    browser security headers (``consortium.api.headers``) go around both, so every answer has them."""

    front: dict[str, Any] | None = None  # ServingFront's arguments; None: no front
    metrics: HubMetrics | None = None  # the non-prediction requests' series (inside the front)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.metrics is not None:
            stack = ApiRequestMetrics(stack, self.metrics)
        if self.front is not None:
            stack = ServingFront(stack, **self.front)
        return SecurityHeaders(stack)


def create_app(settings: Settings | None = None, services: Services | None = None, *,
               serving_front: bool = True) -> FastAPI:
    """The hub's ASGI app. ``serving_front=False`` leaves the prediction routes to the router
    (same answers, about twice the overhead; see ``consortium.api.front``)."""
    settings = settings or Settings()
    svc = services or Services.start(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if services is None:
            svc.close()

    app = HubApp(title="Consortium", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  description="Open platform for cross-organization AI collaboration. Every route "
                              "except /healthz and /readyz needs a bearer API token or a session.")
    app.state.services = svc
    app.metrics = svc.metrics
    api.install(app, settings, svc, not_found_page=unknown_page)  # a browser's unknown page: the UI's 404
    app.include_router(ui_router())  # web UI pages, outside /api/v1, after every API route
    route_index.install(app.router)  # dispatch by path prefix (FastAPI's walk: ~180 matches a request)
    if serving_front:
        app.front = {"services": svc, "max_body_bytes": settings.max_body_bytes}
    return app


def server_app() -> FastAPI:
    """``create_app`` for one HTTP worker process of ``consortium serve --workers N`` (its settings
    from the environment), with the collector settled (``procutil.settle_gc``)."""
    app = create_app()
    settle_gc()
    return app
