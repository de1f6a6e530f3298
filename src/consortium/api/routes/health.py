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
            responses={503: {"model": Readiness, "description": "the database does not answer"}})
@rule("public")
def readyz(request: Request) -> Readiness | JSONResponse:
    request.state.ctx.audit = False
    problem = database_problem(request.app.state.services.engine)
    if problem is not None:  # the probe reports, it does not raise
        return JSONResponse(Readiness(status="unavailable", database=problem).model_dump(), status_code=503)
    return Readiness(status="ready")
