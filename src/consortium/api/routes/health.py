"""Liveness and readiness probes: the only routes open without a credential."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from consortium.api.access import rule
from consortium.api.schemas.health import Health, Readiness
from consortium.store.db import database_problem

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
@rule("public")
def healthz(request: Request) -> Health:
    request.state.ctx.audit = False
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, response_model_exclude_none=True,
            responses={503: {"model": Readiness,
                             "description": "the database or the blob store does not answer (the one named)"}})
@rule("public")
def readyz(request: Request) -> Readiness | JSONResponse:
    """Ready when the database and the blob store both answer (a load balancer's check); a 503
    names the one that failed, in the hub's words only."""
    request.state.ctx.audit = False
    svc = request.app.state.services
    db, blobs = database_problem(svc.engine), svc.blobs.store.problem()
    if db is not None or blobs is not None:  # the probe reports, it does not raise
        return JSONResponse(Readiness(status="unavailable", database=db, blobs=blobs).model_dump(exclude_none=True),
                            status_code=503)
    return Readiness(status="ready")
