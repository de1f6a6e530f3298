"""The two prediction calls, ``/predict`` and Open Inference Protocol ``infer``, apart from HTTP plumbing.

Each takes what a request carries (headers, path parameters, the whole body), admits the call and
runs the deployment's endpoint (``consortium.serving.endpoint``: decode, predict with its pre- and
postprocessing, encode), then wraps the bytes in a response, raising the project's errors for
refusals. The routes (``routes.deployments.predict``, ``routes.inference.infer``) call them with a
Starlette request's parts; the serving front (``consortium.api.front``) calls them straight from
ASGI, which is what keeps a prediction cheap.

Every admitted call is counted (usage per calling organization, latency, status) whatever its
outcome; refusals before admission are counted as rejections and audited by the caller's error
responder.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consortium.api.context import RequestContext
from consortium.api.deps import ORG_HEADER, credential_from, require_csrf
from consortium.api.responses import PreparedJSON
from consortium.api.status import status_of
from consortium.errors import ConsortiumError, NotFound
from consortium.monitoring.recorder import PREDICTION_HEADER
from consortium.serving import oip
from consortium.serving.hub.runtime import Call, ServingRuntime

WARNING_HEADER = b"consortium-warning"  # to the deployment's owner: it serves a model derived from withdrawn data


async def open_call(svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str,
                    *, count: bool) -> tuple[ServingRuntime, Call]:
    """Admit a call to ``deployment`` (credential, grant, quota) or raise; a session cookie needs
    the page's CSRF token, as on every other changing route."""
    rt: ServingRuntime = svc.serving
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
        self.mon = svc.running_monitor()
        self.status = 500

    async def __aenter__(self) -> Self:
        try:
            self.rt, self.call = await open_call(self.svc, self.ctx, self.headers, self.deployment, count=True)
        except ConsortiumError as e:  # labelled with the deployment only once the name resolved to one
            ctx = self.ctx
            resolved = ctx.resource_type == "deployment" and ctx.resource_id is not None
            self.mon.rejected(status_of(e), self.deployment.rpartition("~")[2] if resolved else "",
                              ctx.principal.org_name if ctx.principal is not None else "")
            raise
        return self

    def ok(self) -> None:
        self.status = 200

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, ConsortiumError):
            self.status = status_of(exc)
        call, t = self.call, self.call.target
        self.rt.done(call, self.status != 200)
        self.mon.observe(t.id, t.name, t.owner_org_id, call.principal.org_id, call.principal.org_name, self.status,
                         time.perf_counter() - call.started)


async def predict(svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str,
                  body: bytes) -> Response:
    """``{"inputs": [...]}`` raw rows or pixels -> predictions, probabilities and class names."""
    async with Counted(svc, ctx, headers, deployment) as c:
        call, t, rt = c.call, c.call.target, c.rt
        ep = rt.loaded(t.version_id) or await rt.endpoint(t.version_id)
        rows = ep.decode(body)
        answer = ep.answer(t.name, await ep.predict(rt.inference(), rows))
        answer["prediction_id"], answer["prediction_logged"] = c.mon.sample_and_log(
            t.id, t.owner_org_id, call.principal.org_id, t.version_id, "predict", rows, answer)
        c.ok()
        return PreparedJSON(ep.encode(answer), _warned(call, t))


async def infer(svc: Any, ctx: RequestContext, headers: Mapping[str, str], deployment: str,
                version: str | None, body: bytes) -> Response:
    """Open Inference Protocol inference: JSON tensors or the binary tensor extension."""
    async with Counted(svc, ctx, headers, deployment) as c:
        call, t, rt = c.call, c.call.target, c.rt
        check_version(call, version)
        ep = rt.loaded(t.version_id) or await rt.endpoint(t.version_id)
        header_len = headers.get(oip.HEADER_LENGTH.lower())  # a plain dict from the front: lower-case keys
        if len(body) > 1 << 20:  # big tensors decode in a thread, off the event loop
            req = await run_in_threadpool(ep.decode_tensors, body, header_len)
        else:
            req = ep.decode_tensors(body, header_len)
        outputs = await ep.infer(rt.inference(), req)
        content, header_length = ep.encode_tensors(t.name, outputs, req)
        pid, _ = c.mon.sample_and_log(t.id, t.owner_org_id, call.principal.org_id, t.version_id, "v2",
                                      req.inputs, outputs)
        c.ok()
        extra = {k.decode(): v.decode() for k, v in _warned(call, t) or ()}
        if header_length is None:
            return Response(content, media_type=oip.JSON_CONTENT_TYPE, headers={PREDICTION_HEADER: pid, **extra})
        return Response(content, media_type=oip.BINARY_CONTENT_TYPE,
                        headers={oip.HEADER_LENGTH: str(header_length), PREDICTION_HEADER: pid, **extra})


def _warned(call: Any, t: Any) -> list[tuple[bytes, bytes]] | None:
    """The deployment owner's warning that the model derives from withdrawn data (issue 19); callers
    of other organizations are not told why the owner keeps it serving."""
    if t.warning is None or call.principal.org_id != t.owner_org_id:
        return None
    return [(WARNING_HEADER, t.warning.encode("ascii", "replace"))]
