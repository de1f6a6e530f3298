"""The serving front: the hot prediction routes answered without walking the router.

``POST /api/v1/deployments/{name}/predict`` and ``POST /v2/models/{name}[/versions/{v}]/infer``
are the platform's busiest routes and their model calls take about 10 µs, so the general request
machinery dominated them: FastAPI's route walk (~35 µs: every route's regex), dependency solving,
Starlette's request and response layers and the middlewares cost more than auth, gate, model and
accounting together (in-process ASGI measurements, ``bench/bench_serving.py``).

``ServingFront`` wraps the whole app (``HubApp`` puts it outside every other layer). For those
paths it does what ``ContextMiddleware`` does for the rest (request id, ``RequestContext``, the
body limit with 413), reads the body and calls ``consortium.api.prediction``, the same core the
routes call, so there is one implementation and the route table, OpenAPI and the access-matrix
test still see the routes (``create_app(serving_front=False)`` serves them through the router;
a test checks both answer alike). Errors get the responses the app's handlers give: the API's
error body for ``/predict``, the protocol's ``{"error": "..."}`` for ``/v2``, audited the same
way. Everything else passes through untouched.

>>> match("/v2/models/digits/versions/3/infer")[1]
{'deployment': 'digits', 'version': '3'}
>>> match("/api/v1/deployments/digits/usage") is None
True
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from consortium.api import prediction
from consortium.api.context import RequestContext, request_id, too_large
from consortium.api.query_credentials import credential_parameter, send_refusal
from consortium.api.query_guard import names, refuse
from consortium.errors import ConsortiumError

ErrorResponder = Callable[[Request, Any], Awaitable[Response]]

# the request headers the prediction calls read (ASGI gives names lower-cased)
_WANTED = frozenset({b"authorization", b"cookie", b"x-consortium-org", b"x-csrf-token", b"x-request-id",
                     b"content-length", b"inference-header-content-length"})
_PREDICT = ("/api/v1/deployments/", "/predict")
_INFER = ("/v2/models/", "/infer")


def match(path: str) -> tuple[str, dict[str, str]] | None:
    """``(route name, path parameters)`` when ``path`` is one of the hot routes."""
    if path.endswith(_PREDICT[1]) and path.startswith(_PREDICT[0]):
        name = path[len(_PREDICT[0]):-len(_PREDICT[1])]
        if name and "/" not in name:
            return "predict", {"deployment": name}
    elif path.endswith(_INFER[1]) and path.startswith(_INFER[0]):
        parts = path[len(_INFER[0]):-len(_INFER[1])].split("/")
        if len(parts) == 1 and parts[0]:
            return "infer", {"deployment": parts[0]}
        if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
            return "infer_version", {"deployment": parts[0], "version": parts[2]}
    return None


class ServingFront:
    """Answers the hot prediction routes straight from ASGI (see the module docstring)."""

    def __init__(self, app: ASGIApp, services: Any, max_body_bytes: int) -> None:
        from consortium.api import errors
        from consortium.api.routes import inference

        self.app = app
        self.svc = services
        self.limit = max_body_bytes
        self._errors: dict[str, ErrorResponder] = {
            "predict": errors.error_response,
            "infer": inference.oip_error_response,
            "infer_version": inference.oip_error_response,
        }
        self._unexpected = errors.unexpected_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if hit is None:
            await self.app(scope, receive, send)
            return
        name, params = hit
        headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
        rid = headers.get("x-request-id", "")[:64] or request_id()
        ctx = RequestContext(request_id=rid, action=name)
        scope.setdefault("state", {})["ctx"] = ctx
        param = credential_parameter(scope.get("query_string", b""))
        if param is not None:  # as ContextMiddleware does for every other route
            await send_refusal(send, scope["path"], param, rid)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await too_large(send, self.limit, rid)
            return
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return  # the caller went away: nothing to answer
            chunk = msg.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = msg.get("more_body", False)
            if size > self.limit:
                await too_large(send, self.limit, rid)
                return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            if scope.get("query_string"):  # the prediction routes take none (consortium.api.query_guard)
                refuse(names(scope["query_string"]), frozenset())
            if name == "predict":
                response = await prediction.predict(self.svc, ctx, headers, params["deployment"], body)
            else:
                response = await prediction.infer(self.svc, ctx, headers, params["deployment"],
                                                  params.get("version"), body)
        except ConsortiumError as e:
            response = await self._errors[name](Request(scope, receive), e)
        except Exception as e:  # noqa: BLE001  (the app's own 500: logged, audited, request id named)
            response = await self._unexpected(Request(scope, receive), e)
        response.raw_headers.append((b"x-request-id", rid.encode()))
        await response(scope, receive, send)
