"""The API's part of the hub's app: its routers and how it is put on an app (error handling,
OpenAPI, the request context and its body limits). ``consortium.web.create_app`` builds the app
from this and the web UI; the API imports no UI.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from consortium.api import errors, openapi
from consortium.api.context import ContextMiddleware
from consortium.api.query_guard import known_query
from consortium.config import Settings
from consortium.services import Services

API = "/api/v1"
UPLOAD_SUFFIXES = ("/upload", "/versions", "/models/upload")
KNOWN_QUERY = Depends(known_query)  # unknown query parameters: 422 naming them (consortium.api.query_guard)


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

    api = APIRouter(prefix=API, dependencies=[KNOWN_QUERY])
    for r in (auth.router, auth.me_router, orgs.router, members.router, invitations.router,
              tokens.router, grants.router, audit.router, keys.router, jobs.router, projects.router,
              models.router, deployments.router, monitoring.router):
        api.include_router(r)
    api.include_router(datasets.router)
    from consortium.api.routes import consent, policies  # issue 19: dataset policies, consent

    api.include_router(policies.router)
    api.include_router(consent.router)
    from consortium.api.routes import nodes

    api.include_router(nodes.router)
    from consortium.api.routes import audit_export, records, retention, withdrawals

    api.include_router(records.router)
    api.include_router(audit_export.router)
    api.include_router(withdrawals.router)
    api.include_router(retention.router)
    return api


def install(app: FastAPI, settings: Settings, svc: Services,
            not_found_page: errors.NotFoundPage | None = None) -> None:
    """Put the API on ``app``: error handling (a 404 asks ``not_found_page`` first), the published
    schema, health, the Open Inference Protocol, Prometheus /metrics, the docs, ``/api/v1`` and
    the request context with its body limits."""
    errors.install(app, not_found_page)
    openapi.install(app, svc.resource_types)  # the published schema describes the real answers (consortium.api.openapi)

    from consortium.api.routes import docs, health

    app.include_router(health.router, dependencies=[KNOWN_QUERY])
    from consortium.api.routes import inference, monitoring

    app.include_router(inference.router, dependencies=[KNOWN_QUERY])  # Open Inference Protocol under /v2
    app.include_router(monitoring.metrics_router, dependencies=[KNOWN_QUERY])  # Prometheus /metrics
    app.include_router(docs.router, dependencies=[KNOWN_QUERY])
    app.include_router(api_router())

    def limit_for(path: str) -> int:
        if path.startswith(API) and path.endswith(UPLOAD_SUFFIXES):
            return settings.max_upload_bytes
        return settings.max_body_bytes

    app.add_middleware(ContextMiddleware, limit_for=limit_for)
