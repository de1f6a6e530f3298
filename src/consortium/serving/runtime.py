"""The serving runtime one hub process keeps: inference service, access gate, usage meter and the
immutable per-version serving data (preprocessing, class names). Held in
``Services.extras["serving"]`` (its ``InferenceService`` also in ``extras["inference"]``),
created on first use and closed when the app shuts down.

A call goes ``open`` (credential, deployment, grant, quota: in-memory on the hot path) ->
``predict`` / ``infer`` -> ``done`` (usage accounting).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from consortium.errors import (
    BadRequest,
    ConsortiumError,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    Unauthenticated,
)
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.registry.models import read_onnx
from consortium.services import Services
from consortium.serving.batching import BatchInfo
from consortium.serving.gate import Access, Gate, Target
from consortium.serving.service import BatchingConfig, InferenceService, Stage
from consortium.serving.signature import ModelSignature
from consortium.serving.usage import UsageMeter
from consortium.store.tables.identity import Organization
from consortium.store.tables.registry import ModelVersion, RegisteredModel

EXTRA_KEY = "serving"
RAW = "inputs"  # the decoded request array, before preprocessing


@dataclass(frozen=True)
class VersionInfo:
    """Immutable serving data of one model version (cached for the life of the process)."""

    id: str
    version: int
    model: str  # org/name
    task: str | None
    class_names: list[str] | None
    signature: ModelSignature
    preprocessor: Any  # consortium.processing.Preprocessor or None

    @functools.cached_property
    def label(self) -> str:
        """``org/model:version``, the model label of metrics."""
        return f"{self.model}:{self.version}"

    @functools.cached_property
    def classify(self) -> bool:
        return self.task == "classification" or (self.task is None and self.class_names is not None)

    @functools.cached_property
    def stage(self) -> Stage | None:
        """``/predict``'s batch-level work when the preprocessing decodes each request on its own
        (``Preprocessor.batchable``): preprocessing before the model, class probabilities and
        labels after it, once per batch."""
        prep = self.preprocessor
        if prep is None or not prep.batchable:
            return None
        name = self.signature.inputs[0].name
        return Stage("predict", lambda feed: {name: prep.finish_inputs(feed[RAW])},
                     functools.partial(_post, self.classify))

    def names_for(self, classes: int) -> list[str]:
        """Class names for ``classes`` probabilities (their indexes when the names do not fit)."""
        names = self.class_names
        return names if names is not None and len(names) == classes else [str(i) for i in range(classes)]


@dataclass
class Call:
    """One admitted call: who calls which deployment, and when it started."""

    principal: Principal
    target: Target
    access: Access
    started: float


class ServingRuntime:
    def __init__(self, svc: Services, *, ttl: float = 1.0, usage_interval: float = 1.0,
                 batching: BatchingConfig = BatchingConfig(), cache_bytes: int = 1 << 30) -> None:
        self.svc = svc
        self.meter = UsageMeter(svc.session_factory, interval=usage_interval, audit=svc.audit_in)
        self.gate = Gate(svc.session_factory, self.meter, ttl)
        self.batching = batching
        self.cache_bytes = cache_bytes
        self._inference: dict[int, InferenceService] = {}  # per event loop (one in production)
        self._versions: OrderedDict[str, VersionInfo] = OrderedDict()
        # (credential key, deployment, role) -> (fresh until, principal, target, access): see _remember
        self._admitted: dict[Any, tuple[float, Principal, Target, Access]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.meter.start()
        # Everything imported and built so far lives as long as the process: move it out of the
        # collector's reach, so that full collections stop pausing every prediction (~150 ms
        # every few seconds under load were measured before this).
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------------------ wiring
    def inference(self) -> InferenceService:
        loop_id = id(asyncio.get_running_loop())
        s = self._inference.get(loop_id)
        if s is None:
            s = InferenceService(self._load_onnx, max_bytes=self.cache_bytes, batching=self.batching,
                                 on_batch=self._on_batch)
            self._inference[loop_id] = s
            self.svc.extras.setdefault("inference", s)
        return s

    def _on_batch(self, version_id: str, info: BatchInfo) -> None:
        """Batch sizes to the monitor (``extras["monitoring"]``), when monitoring runs."""
        mon = self.svc.extras.get("monitoring")
        if mon is not None:
            v = self._versions.get(version_id)
            mon.on_batch(v.label if v else version_id, info.requests, info.rows)

    def _load_onnx(self, version_id: str) -> bytes:
        with self.svc.session_factory() as s:
            v = s.get(ModelVersion, version_id)
            if v is None:
                raise NotFound(f"model version {version_id!r} not found")
            return read_onnx(s, self.svc.blobs, v)

    async def version_info(self, version_id: str) -> VersionInfo:
        info = self._versions.get(version_id)
        if info is None:
            info = await run_in_threadpool(self._load_version_info, version_id)
            self._versions[version_id] = info
            while len(self._versions) > 512:
                self._versions.popitem(last=False)
        return info

    def _load_version_info(self, version_id: str) -> VersionInfo:
        with self.svc.session_factory() as s:
            v = s.get(ModelVersion, version_id)
            if v is None:
                raise NotFound(f"model version {version_id!r} not found")
            m = s.get(RegisteredModel, v.model_id)
            org = s.get(Organization, m.org_id) if m else None
            prep = None
            if v.preprocessing is not None:
                from consortium.processing.preprocessor import Preprocessor

                prep = Preprocessor.from_state(v.preprocessing)
            return VersionInfo(v.id, v.version, f"{org.name if org else '?'}/{m.name if m else '?'}", v.task,
                               list(v.class_names) if v.class_names else None,
                               ModelSignature.from_dict(v.signature), prep)

    # ------------------------------------------------------------------------ access
    def _credential(self, cred: tuple[str, str] | None,
                    org_header: str | None) -> tuple[tuple[str, str, str | None], str]:
        """The gate's key for a credential (its hash, never the secret), and the secret."""
        if cred is None:
            raise Unauthenticated("this route needs a credential",
                                  hint="send 'Authorization: Bearer <API token>' or log in")
        kind, secret = cred
        if kind == "token" and secret.startswith("csm_ses_"):
            kind = "session"
        return self.gate.credential_key(kind, secret, org_header if kind == "session" else None), secret

    async def principal(self, cred: tuple[str, str] | None, org_header: str | None) -> Principal:
        return await self._principal(*self._credential(cred, org_header))

    async def _principal(self, key: tuple[str, str, str | None], secret: str) -> Principal:
        p = self.gate.principal_cached(key)
        if p is None:
            return await run_in_threadpool(self.gate.load_principal, key, secret)
        self._refresh(self.gate.principals, key, self.gate.load_principal, key, secret)
        return p

    async def target(self, name: str, p: Principal | None = None) -> Target:
        """What deployment ``name`` serves now; a bare name is resolved for ``p``'s organization."""
        t = self.gate.target_cached(name, p)
        if t is None:
            return await run_in_threadpool(self.gate.load_target, name, p)
        self._refresh(self.gate.targets, self.gate.target_key(name, p), self.gate.load_target, name, p)
        return t

    def _refresh(self, cache: Any, key: Any, load: Any, *args: Any) -> None:
        """Refresh a stale entry in the background (one caller per key; the rest use it meanwhile)."""
        if not cache.stale(key):
            return

        async def run() -> None:
            try:
                await run_in_threadpool(load, *args)
            except Exception:  # a refusal is cached by the loader or met by the next caller
                cache.done(key)
                cache.drop(lambda k: k == key)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open(self, ctx: Any, cred: tuple[str, str] | None, org_header: str | None, name: str,
                   role: Role = Role.viewer, *, count: bool = True) -> Call:
        """Admit a call or raise (401, 404 without a grant, 403 for a low role, 429 over quota).

        Refusals stay audited by the error handler; an admitted call is not audited on its own
        (see ``consortium.serving.usage`` for the rule)."""
        ckey, secret = self._credential(cred, org_header)
        akey = (ckey, name, role)
        hit = self._admitted.get(akey)
        if hit is not None and hit[0] > time.monotonic():
            _, p, t, a = hit
            ctx.principal = p
            ctx.resource("deployment", t.id, t.owner_org_id)
        else:
            p = await self._principal(ckey, secret)
            ctx.principal = p
            t = await self.target(name, p)
            ctx.resource("deployment", t.id, t.owner_org_id)
            a = self.gate.access_cached(t, p)
            if a is None:
                a = await run_in_threadpool(self.gate.load_access, t, p, name)
            elif a.grant_id is not None:
                self._refresh(self.gate.access, (t.id, p.org_id), self.gate.load_access, t, p)
            p.require(role)
            self._remember(akey, ckey, name, p, t, a)
        if count:
            try:
                self.meter.admit(t.id, t.owner_org_id, p.org_id, a.limits)
            except QuotaExceeded:
                if not self.meter.first_rejection(t.id, p.org_id):
                    ctx.audit = False
                raise
        ctx.audit = False
        return Call(p, t, a, time.perf_counter())

    def _remember(self, akey: Any, ckey: Any, name: str, p: Principal, t: Target, a: Access) -> None:
        """Keep an admission (caller, deployment, role -> principal, target, access) while all three
        gate entries behind it are fresh, so that the next call skips the three lookups; it never
        outlives them, so revocations and alias moves take effect as the gate promises."""
        until = min(self.gate.principals.fresh_until(ckey),
                    self.gate.targets.fresh_until(self.gate.target_key(name, p)))
        if p.org_id != t.owner_org_id:  # the owner's access is not looked up
            until = min(until, self.gate.access.fresh_until((t.id, p.org_id)))
        if until > time.monotonic():
            if len(self._admitted) >= 10_000:
                self._admitted.clear()
            self._admitted[akey] = (until, p, t, a)

    def done(self, call: Call, error: bool) -> None:
        self.meter.record(call.target.id, call.target.owner_org_id, call.principal.org_id,
                          (time.perf_counter() - call.started) * 1000.0, error)

    # ------------------------------------------------------------------------ predictions
    async def predict(self, call: Call, raw: Any) -> dict[str, Any]:
        """``/predict``: raw rows or pixels -> preprocessing -> model -> labels and probabilities."""
        vid = call.target.version_id
        info = self._versions.get(vid) or await self.version_info(vid)
        svc = self.inference()
        if not isinstance(raw, list) or not raw:
            raise BadRequest("'inputs' must be a non-empty list of rows (or images)",
                             hint=_expected(info))
        prep = info.preprocessor
        try:
            if info.stage is not None:
                out = await svc.infer(info.id, {RAW: prep.decode_inputs(raw)}, stage=info.stage)
            elif prep is not None:
                x = prep.transform_inputs(raw)
                out = _post(info.classify, await svc.infer(info.id, {info.signature.inputs[0].name: x}))
            else:
                out = _post(info.classify, await svc.infer_rows(info.id, raw))
        except InvalidInput as e:
            raise BadRequest(e.message, hint=_expected(info)) from None
        return _body(call.target.name, info, out)

    async def infer(self, call: Call, inputs: Mapping[str, np.ndarray],
                    outputs: list[str] | None) -> tuple[VersionInfo, dict[str, np.ndarray]]:
        """Open Inference Protocol: named tensors in, named tensors out (no preprocessing)."""
        info = await self.version_info(call.target.version_id)
        return info, await self.inference().infer(info.id, inputs, outputs=outputs, cast=False)

    async def warm(self, version_id: str) -> None:
        """Load a version before traffic switches to it (alias moves)."""
        await self.version_info(version_id)
        await self.inference().load(version_id)

    def invalidate(self, deployment: str | None = None) -> None:
        self._admitted.clear()
        self.gate.invalidate(deployment)

    async def aclose(self) -> None:
        self.closed = True
        loop_id = id(asyncio.get_running_loop())
        for lid, s in list(self._inference.items()):
            if lid == loop_id:
                await s.aclose()
        self._inference.clear()
        await run_in_threadpool(self.meter.close)


def _expected(info: VersionInfo) -> str:
    prep = info.preprocessor
    if prep is not None and prep.kind == "image":
        return f"send {{'inputs': [...]}} with images of shape {list(prep.image_shape)} (C, H, W) or flat"
    if prep is not None:
        cols = prep.input_columns
        shown = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        return f"send {{'inputs': [[...], ...]}} with rows of {len(cols)} values ({shown}) or objects by column"
    spec = info.signature.inputs[0]
    return f"send {{'inputs': [[...], ...]}} with rows shaped {list(spec.shape[1:])} (or flat) of {spec.dtype}"


def _post(classify: bool, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Batch-level: a classifier's first output -> ``probabilities`` (a one-column sigmoid
    becomes two columns) and the winning ``index``; other outputs as they are."""
    y = next(iter(out.values()))
    if classify and y.ndim == 2:
        probs = np.concatenate([1.0 - y, y], axis=1) if y.shape[1] == 1 else y
        return {"probabilities": probs, "index": probs.argmax(axis=1)}
    return out


def _body(name: str, info: VersionInfo, out: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``/predict`` answer for one request's share of ``_post``'s outputs."""
    body: dict[str, Any] = {"deployment": name, "model": info.model, "version": info.version}
    if "index" in out:
        probs = out["probabilities"]
        names = info.names_for(probs.shape[1])
        body.update(predictions=[names[i] for i in out["index"].tolist()],
                    probabilities=np.ascontiguousarray(probs), class_names=names)
        return body
    y = next(iter(out.values()))
    if info.task == "regression":
        body["predictions"] = (y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y).tolist()
    else:
        body["predictions"] = y.tolist()
        body["outputs"] = {k: v.tolist() for k, v in out.items()}
    return body


def get_runtime(svc: Services) -> ServingRuntime:
    """The process's runtime, created on first use."""
    rt = svc.extras.get(EXTRA_KEY)
    if rt is None or rt.closed:
        cfg = svc.settings
        batching = BatchingConfig(enabled=cfg.batching == "on", max_batch_size=cfg.batch_max_size,
                                  max_wait_ms=cfg.batch_max_wait_ms)
        rt = ServingRuntime(svc, batching=batching)
        svc.extras[EXTRA_KEY] = rt
    return rt  # type: ignore[no-any-return]


async def close_runtime(svc: Services) -> None:
    rt = svc.extras.pop(EXTRA_KEY, None)
    svc.extras.pop("inference", None)
    if rt is not None:
        await rt.aclose()


__all__ = ["Call", "ConsortiumError", "ServingRuntime", "VersionInfo", "close_runtime", "get_runtime"]
