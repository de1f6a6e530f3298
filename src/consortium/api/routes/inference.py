"""Open Inference Protocol (KServe V2) REST routes under ``/v2``; ``{deployment}`` is the model name.

Works with standard clients such as ``tritonclient.http`` (JSON or binary tensors), given a
bearer token header. Errors on these routes are ``{"error": "..."}`` as the protocol requires:
the routes use ``OipRoute``, which turns the project's errors into that shape (and audits the
refusals like the rest of the API) instead of the hub's usual error body.

>>> import tritonclient.http as http                                              # doctest: +SKIP
>>> c = http.InferenceServerClient("127.0.0.1:8000")                              # doctest: +SKIP
>>> c.is_model_ready("digits", headers={"Authorization": "Bearer csm_tok_..."})   # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from consortium.api import prediction
from consortium.api.access import rule
from consortium.api.deps import ORG_HEADER, Svc, bearer
from consortium.api.errors import _audit_failure
from consortium.api.routes import deployments
from consortium.api.schemas.inference import (
    InferResponse,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
)
from consortium.api.status import status_of
from consortium.errors import ConsortiumError, QuotaExceeded
from consortium.serving import oip
from consortium.store.db import database_problem
from consortium.version import __version__


async def oip_error_response(request: Request, exc: ConsortiumError | RequestValidationError) -> JSONResponse:
    """The protocol's ``{"error": "..."}`` answer for an error (audited first, like the rest of the API)."""
    if isinstance(exc, RequestValidationError):
        await _audit_failure(request, "bad_request")
        return JSONResponse({"error": "; ".join(str(x.get("msg")) for x in exc.errors())}, status_code=400)
    await _audit_failure(request, exc.code)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QuotaExceeded) else None
    return JSONResponse(oip.error_body(exc), status_code=status_of(exc), headers=headers)


class OipRoute(APIRoute):
    """A route whose errors are answered in the protocol's ``{"error": "..."}`` shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (ConsortiumError, RequestValidationError) as e:
                return await oip_error_response(request, e)

        return handle


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Stop the serving runtime (batchers, usage flush) when the app stops."""
    yield
    await app.state.services.serving.aclose()


router = APIRouter(tags=["open inference protocol"], route_class=OipRoute, lifespan=lifespan)
# The hot prediction route sits here too, in a router the app includes before the /api/v1 tree:
# FastAPI matches routes in order, and walking the whole API to reach it cost ~0.4 ms a call.
router.add_api_route("/api/v1/deployments/{deployment}/predict", deployments.predict, methods=["POST"],
                     route_class_override=APIRoute, tags=["deployments"], name="predict",
                     openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["inputs"], "properties": {"inputs": {
                             "type": "array", "minItems": 1,
                             "description": "rows of features (lists, or objects by column name) or images "
                                            "(nested lists of pixels), in the shape the deployment's model "
                                            "takes (GET the deployment for its inputs)"}}}}}}})


def _no_audit(request: Request) -> None:
    request.state.ctx.audit = False


@router.get("/v2/health/live", response_model=Live)
@rule("public")
def live(request: Request) -> dict[str, bool]:
    _no_audit(request)
    return {"live": True}


@router.get("/v2/health/ready", response_model=Ready,
            responses={503: {"model": Ready, "description": "the database does not answer"}})
@rule("public")
def ready(request: Request) -> JSONResponse:
    _no_audit(request)
    if database_problem(request.app.state.services.engine) is not None:  # the probe reports, it does not raise
        return JSONResponse({"ready": False}, status_code=503)
    return JSONResponse({"ready": True})


@router.get("/v2", response_model=ServerMetadata)
@rule("self")
async def server_metadata(request: Request, svc: Svc) -> dict[str, Any]:
    """Server metadata (needs a credential)."""
    request.state.ctx.principal = await svc.serving.principal(bearer(request), request.headers.get(ORG_HEADER))
    _no_audit(request)
    return oip.server_metadata("consortium", __version__)


async def _metadata(request: Request, svc: Any, deployment: str, version: str | None) -> dict[str, Any]:
    rt, call = await prediction.open_call(svc, request.state.ctx, request.headers, deployment, count=False)
    prediction.check_version(call, version)
    return (await rt.endpoint(call.target.version_id)).metadata(call.target.name)


async def _ready(request: Request, svc: Any, deployment: str, version: str | None) -> dict[str, Any]:
    rt, call = await prediction.open_call(svc, request.state.ctx, request.headers, deployment, count=False)
    prediction.check_version(call, version)
    await rt.inference().load(call.target.version_id)
    return {"name": call.target.name, "ready": True}


@router.get("/v2/models/{deployment}", response_model=ModelMetadata)
@rule("resource")
async def model_metadata(deployment: str, request: Request) -> dict[str, Any]:
    return await _metadata(request, request.app.state.services, deployment, None)


@router.get("/v2/models/{deployment}/versions/{version}", response_model=ModelMetadata)
@rule("resource")
async def model_version_metadata(deployment: str, version: str, request: Request) -> dict[str, Any]:
    return await _metadata(request, request.app.state.services, deployment, version)


@router.get("/v2/models/{deployment}/ready", response_model=ModelReady)
@rule("resource")
async def model_ready(deployment: str, request: Request) -> dict[str, Any]:
    return await _ready(request, request.app.state.services, deployment, None)


@router.get("/v2/models/{deployment}/versions/{version}/ready", response_model=ModelReady)
@rule("resource")
async def model_version_ready(deployment: str, version: str, request: Request) -> dict[str, Any]:
    return await _ready(request, request.app.state.services, deployment, version)


# documented, not enforced: with the binary tensor extension the body is this JSON header followed by
# the raw tensors (``Inference-Header-Content-Length`` gives the header's length)
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": InferResponse, "description": "the outputs (JSON, or a JSON header and binary tensors)"}}


async def _infer(request: Request, deployment: str, version: str | None) -> Response:
    try:
        body = await request.body()
    except ClientDisconnect:  # the caller went away mid-request: nothing to answer, not an error
        return Response(status_code=499)
    return await prediction.infer(request.app.state.services, request.state.ctx, request.headers, deployment,
                                  version, body)


@router.post("/v2/models/{deployment}/infer", responses=INFER_RESPONSES)
@rule("resource")
async def infer(deployment: str, request: Request) -> Response:
    """Inference with JSON tensors or the binary tensor extension."""
    return await _infer(request, deployment, None)


@router.post("/v2/models/{deployment}/versions/{version}/infer", responses=INFER_RESPONSES)
@rule("resource")
async def infer_version(deployment: str, version: str, request: Request) -> Response:
    return await _infer(request, deployment, version)
