"""The app factory: wires settings, services, routers and error handling. Nothing global at import.

>>> from consortium.config import Settings
>>> app = create_app(Settings(home="/tmp/consortium-doc"))
>>> app.title
'Consortium'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from consortium import __version__
from consortium.api import errors, openapi
from consortium.api.context import ContextMiddleware
from consortium.api.front import ServingFront
from consortium.api.headers import SecurityHeaders
from consortium.config import Settings
from consortium.services import Services

API = "/api/v1"
UPLOAD_SUFFIXES = ("/upload", "/versions", "/models/upload")


def api_router() -> APIRouter:
    from consortium.api.routes import (
        audit,
        auth,
        datasets,
        deployments,
        grants,
        invitations,
        jobs,
        keys,
        members,
        models,
        monitoring,
        orgs,
        projects,
        tokens,
    )

    api = APIRouter(prefix=API)
    for r in (auth.router, auth.me_router, orgs.router, members.router, invitations.router,
              tokens.router, grants.router, audit.router, keys.router, jobs.router, projects.router,
              models.router, deployments.router, monitoring.router):
        api.include_router(r)
    api.include_router(datasets.router)
    from consortium.api.routes import nodes

    api.include_router(nodes.router)
    return api


class HubApp(FastAPI):
    """FastAPI with the serving front (``consortium.api.front``) outside every other layer, even
    Starlette's error middleware: the front answers its own errors and unexpected failures. The
    browser security headers (``consortium.api.headers``) go around both, so every answer has them."""

    front: dict[str, Any] | None = None  # ServingFront's arguments; None: no front

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
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
    errors.install(app)
    openapi.install(app, svc.resource_types)  # the published schema describes the real answers (consortium.api.openapi)

    from consortium.api.routes import docs, health

    app.include_router(health.router)
    from consortium.api.routes import inference, monitoring

    app.include_router(inference.router)  # Open Inference Protocol under /v2
    app.include_router(monitoring.metrics_router)  # Prometheus /metrics
    app.include_router(docs.router)
    app.include_router(api_router())
    from consortium.ui import ui_router

    app.include_router(ui_router())  # web UI pages, outside /api/v1

    def limit_for(path: str) -> int:
        if path.startswith(API) and path.endswith(UPLOAD_SUFFIXES):
            return settings.max_upload_bytes
        return settings.max_body_bytes

    app.add_middleware(ContextMiddleware, limit_for=limit_for)
    if serving_front:
        app.front = {"services": svc, "max_body_bytes": settings.max_body_bytes}
    return app
