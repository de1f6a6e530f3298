"""The two prediction calls, ``/predict`` and Open Inference Protocol ``infer``, apart from HTTP plumbing.

Each takes what a request carries (headers, path parameters, the whole body) and returns a
response, raising the project's errors for refusals. The routes (``routes.deployments.predict``,
``routes.inference.infer``) call them with a Starlette request's parts; the serving front
(``consortium.api.front``) calls them straight from ASGI, which is what keeps a prediction cheap.

Every admitted call is counted (usage per calling organization, latency, status) whatever its
outcome; refusals before admission are counted as rejections and audited by the caller's error
responder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consortium.api.context import RequestContext
from consortium.api.deps import ORG_HEADER, credential_from, require_csrf
from consortium.api.responses import PreparedJSON, dumps
from consortium.errors import BadRequest, ConsortiumError, NotFound
from consortium.monitoring.recorder import PREDICTION_HEADER, get_monitor
from consortium.serving import oip
from consortium.serving.runtime import Call, ServingRuntime, get_runtime

PREDICT_HINT = 'send {"inputs": [[...], ...]}'
INFER_HINT = 'send {"inputs": [{"name": ..., "shape": ..., "datatype": ..., "data": [...]}]}'


async def open_call(svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str,
                    *, count: bool) -> tuple[ServingRuntime, Call]:
    """Admit a call to ``deployment`` (credential, grant, quota) or raise; a session cookie needs
    the page's CSRF token, as on every other changing route."""
    rt = get_runtime(svc)
    cred = credential_from(headers)
    if cred is not None and cred[0] == "session":  # checked before the call counts against a quota
        ctx.principal = await rt.principal(cred, headers.get(ORG_HEADER))
        require_csrf(svc.settings.secret_key, headers, ctx.principal)
    return rt, await rt.open(ctx, cred, headers.get(ORG_HEADER), deployment, count=count)


def check_version(call: Call, version: str | None) -> None:
    if version is not None and version != str(call.target.version):
        raise NotFound(f"deployment {call.target.name!r} serves version {call.target.version}, not {version!r}",
                       hint=f"use /v2/models/{call.target.name}/infer or /versions/{call.target.version}")


class Counted:
    """``async with Counted(...) as c``: admits the call (or counts the refusal and raises), and
    on the way out accounts it (usage, latency, status) whatever happened; set ``c.ok()`` once
    the answer is ready."""

    __slots__ = ("call", "ctx", "deployment", "headers", "mon", "rt", "status", "svc")

    def __init__(self, svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str) -> None:
        self.svc, self.ctx, self.headers, self.deployment = svc, ctx, headers, deployment
        self.mon = get_monitor(svc)
        self.status = 500

    async def __aenter__(self) -> Self:
        try:
            self.rt, self.call = await open_call(self.svc, self.ctx, self.headers, self.deployment, count=True)
        except ConsortiumError as e:
            self.mon.rejected(e.status)
            raise
        return self

    def ok(self) -> None:
        self.status = 200

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, ConsortiumError):
            self.status = exc.status
        call, t = self.call, self.call.target
        self.rt.done(call, self.status != 200)
        self.mon.observe(t.id, t.name, t.owner_org_id, call.principal.org_id, call.principal.org_name, self.status,
                         time.perf_counter() - call.started)


async def predict(svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str,
                  body: bytes) -> Response:
    """``{"inputs": [...]}`` raw rows or pixels -> predictions, probabilities and class names."""
    async with Counted(svc, ctx, headers, deployment) as c:
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as e:
            raise _refusal(body, e) from None
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise BadRequest("the body must be a JSON object with 'inputs'", hint=PREDICT_HINT)
        call, t = c.call, c.call.target
        out = await c.rt.predict(call, payload["inputs"])
        out["prediction_id"], out["prediction_logged"] = c.mon.sample_and_log(
            t.id, t.owner_org_id, call.principal.org_id, t.version_id, "predict", payload["inputs"], out)
        c.ok()
        return PreparedJSON(dumps(out))


def _refusal(body: bytes, error: orjson.JSONDecodeError) -> BadRequest:
    """The 400 for a ``/predict`` body orjson refuses: when it is JSON but for NaN or infinity
    (``NaN``, ``Infinity``, ``1e999``), the error names the row (and column), as the Open Inference
    Protocol's does for its inputs; otherwise it is the parser's message."""
    try:
        loose = json.loads(body)
    except (ValueError, RecursionError):
        loose = None
    rows = loose.get("inputs") if isinstance(loose, dict) else None
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        found = _non_finite(row)
        if found is not None:
            path, value = found
            cols = [k for k in path if isinstance(k, str)]
            where = f", column {cols[0]!r}" if cols else f", value {path[0]}" if len(path) == 1 else ""
            what = "NaN" if math.isnan(value) else "infinity"
            return BadRequest(f"input 'inputs' row {i}{where} holds {what}; the model takes finite numbers",
                              hint="send a number in every place: JSON has no NaN or infinity")
    return BadRequest(f"the body is not valid JSON ({error})", hint=PREDICT_HINT)


def _non_finite(row: Any) -> tuple[tuple[int | str, ...], float] | None:
    """(path, value) of the first NaN or infinity in a row of nested lists and objects."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), row)]
    while stack:  # iterative: the nesting depth is the caller's choice
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path, value
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend(reversed([((*path, k), v) for k, v in items]))
    return None


async def infer(svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str,
                version: str | None, body: bytes) -> Response:
    """Open Inference Protocol inference: JSON tensors or the binary tensor extension."""
    async with Counted(svc, ctx, headers, deployment) as c:
        call, t = c.call, c.call.target
        check_version(call, version)
        if not body:
            raise BadRequest("the request has no body", hint=INFER_HINT)
        header_len = headers.get(oip.HEADER_LENGTH.lower())  # a plain dict from the front: lower-case keys
        if len(body) > 1 << 20:  # big tensors decode in a thread, off the event loop
            req = await run_in_threadpool(oip.parse_infer_request, body, header_len)
        else:
            req = oip.parse_infer_request(body, header_len)
        info, outputs = await c.rt.infer(call, req.inputs, req.output_names)
        content, header_length = oip.build_infer_response(t.name, outputs, req, model_version=str(info.version))
        pid, _ = c.mon.sample_and_log(t.id, t.owner_org_id, call.principal.org_id, t.version_id, "v2",
                                      req.inputs, outputs)
        c.ok()
        if header_length is None:
            return Response(content, media_type=oip.JSON_CONTENT_TYPE, headers={PREDICTION_HEADER: pid})
        return Response(content, media_type=oip.BINARY_CONTENT_TYPE,
                        headers={oip.HEADER_LENGTH: str(header_length), PREDICTION_HEADER: pid})
