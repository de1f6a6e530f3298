"""Liveness and readiness probes: the only routes open without a credential."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from consortium.api.access import rule

router = APIRouter(tags=["health"])


@router.get("/healthz")
@rule("public")
def healthz(request: Request) -> dict[str, str]:
    request.state.ctx.audit = False
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the database does not answer"}})
@rule("public")
def readyz(request: Request) -> JSONResponse:
    request.state.ctx.audit = False
    try:
        with request.app.state.services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # the probe reports, it does not raise
        return JSONResponse({"status": "unavailable", "database": str(e)[:200]}, status_code=503)
    return JSONResponse({"status": "ready"})
