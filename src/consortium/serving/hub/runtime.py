"""The serving runtime one hub process keeps: access gate, usage meter, one inference service per
event loop and the per-version endpoints (``consortium.serving.endpoint``).

``Services.start`` builds it (``Services.serving``) and nothing runs until the first call: that
starts the usage meter's flushing thread; the app's shutdown stops it (``aclose``), and a later
call starts it again. A call goes ``open`` (credential, deployment, grant, quota: in-memory on the
hot path) -> the endpoint's hooks (``endpoint``, then decode, predict, encode) -> ``done`` (usage
accounting). Free of Starlette and of the registry: the model bytes come from ``load_model``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import NotFound, QuotaExceeded, Unauthenticated
from consortium.governance.audit import EventDraft
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.serving.batching import BatchInfo
from consortium.serving.endpoint import Endpoint
from consortium.serving.hub.gate import Access, Gate, Target
from consortium.serving.hub.usage import UsageMeter
from consortium.serving.service import BatchingConfig, InferenceService
from consortium.serving.signature import ModelSignature
from consortium.store.tables.identity import Organization
from consortium.store.tables.registry import ModelVersion, RegisteredModel

MAX_ENDPOINTS = 512  # versions whose serving data is kept (small: no model weights)


class BatchCounter(Protocol):
    """Where batch sizes go (``consortium.monitoring.recorder.Monitor``)."""

    def on_batch(self, model: str, requests: int, rows: int) -> None: ...


@dataclass
class Call:
    """One admitted call: who calls which deployment, and when it started."""

    principal: Principal
    target: Target
    access: Access
    started: float


class ServingRuntime:
    """The prediction path of one hub process (see the module docstring).

    ``load_model(version_id) -> ONNX bytes`` raises ``NotFound`` for an unknown version;
    ``monitor()`` is the process's monitor when monitoring runs (None otherwise).
    """

    def __init__(self, factory: sessionmaker[Session], load_model: Callable[[str], bytes], *,
                 audit: Callable[[Session, list[EventDraft]], None] | None = None,
                 monitor: Callable[[], BatchCounter | None] = lambda: None,
                 batching: BatchingConfig | None = None, cache_bytes: int = 1 << 30, ttl: float = 1.0,
                 usage_interval: float = 1.0) -> None:
        self._factory = factory
        self._load_model = load_model
        self._monitor = monitor
        self.meter = UsageMeter(factory, interval=usage_interval, audit=audit)
        self.gate = Gate(factory, self.meter, ttl)
        self.batching = batching or BatchingConfig()
        self.cache_bytes = cache_bytes
        self._inference: dict[asyncio.AbstractEventLoop, InferenceService] = {}
        self._endpoints: OrderedDict[str, Endpoint] = OrderedDict()
        # (credential key, deployment, role) -> (fresh until, principal, target, access): see _remember
        self._admitted: dict[Any, tuple[float, Principal, Target, Access]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.running = False

    def _start(self) -> None:
        self.meter.start()
        self.running = True
        # Everything imported and built so far lives as long as the process: move it out of the
        # collector's reach, so that full collections stop pausing every prediction (~150 ms
        # every few seconds under load were measured before this).
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------------------ models
    def inference(self) -> InferenceService:
        """This event loop's inference service (models, batchers), created on first use."""
        loop = asyncio.get_running_loop()
        s = self._inference.get(loop)
        if s is None:
            s = InferenceService(self._load_model, max_bytes=self.cache_bytes, batching=self.batching,
                                 on_batch=self._on_batch)
            self._inference[loop] = s
        return s

    def _on_batch(self, version_id: str, info: BatchInfo) -> None:
        """Batch sizes to the monitor, when monitoring runs."""
        mon = self._monitor()
        if mon is not None:
            ep = self._endpoints.get(version_id)
            mon.on_batch(ep.label if ep else version_id, info.requests, info.rows)

    def loaded(self, version_id: str) -> Endpoint | None:
        """The endpoint of ``version_id`` when its serving data is at hand (the hot path), else None."""
        return self._endpoints.get(version_id)

    async def endpoint(self, version_id: str) -> Endpoint:
        """The endpoint of ``version_id``, its serving data read in a thread on first use."""
        ep = self._endpoints.get(version_id)
        if ep is None:
            ep = await asyncio.to_thread(self._read_endpoint, version_id)
            self._endpoints[version_id] = ep
            while len(self._endpoints) > MAX_ENDPOINTS:
                self._endpoints.popitem(last=False)
        return ep

    def _read_endpoint(self, version_id: str) -> Endpoint:
        with self._factory() as s:
            v = s.get(ModelVersion, version_id)
            if v is None:
                raise NotFound(f"model version {version_id!r} not found")
            m = s.get(RegisteredModel, v.model_id)
            org = s.get(Organization, m.org_id) if m else None
            prep = None
            if v.preprocessing is not None:
                from consortium.processing.preprocessor import Preprocessor

                prep = Preprocessor.from_state(v.preprocessing)
            return Endpoint(v.id, v.version, f"{org.name if org else '?'}/{m.name if m else '?'}", v.task,
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
            return await asyncio.to_thread(self.gate.load_principal, key, secret)
        self._refresh(self.gate.principals, key, self.gate.load_principal, key, secret)
        return p

    async def target(self, name: str, p: Principal | None = None) -> Target:
        """What deployment ``name`` serves now; a bare name is resolved for ``p``'s organization."""
        t = self.gate.target_cached(name, p)
        if t is None:
            return await asyncio.to_thread(self.gate.load_target, name, p)
        self._refresh(self.gate.targets, self.gate.target_key(name, p), self.gate.load_target, name, p)
        return t

    def _refresh(self, cache: Any, key: Any, load: Any, *args: Any) -> None:
        """Refresh a stale entry in the background (one caller per key; the rest use it meanwhile)."""
        if not cache.stale(key):
            return

        async def run() -> None:
            try:
                await asyncio.to_thread(load, *args)
            # a refusal is cached by the loader or met by the next caller, who gets the error
            except Exception:  # noqa: BLE001 - a background refresh: nobody awaits it to see an error
                cache.done(key)
                cache.drop(lambda k: k == key)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open(self, ctx: Any, cred: tuple[str, str] | None, org_header: str | None, name: str,
                   role: Role = Role.viewer, *, count: bool = True) -> Call:
        """Admit a call or raise (401, 404 without a grant, 403 for a low role, 429 over quota).

        Refusals stay audited by the error handler; an admitted call is not audited on its own
        (see ``consortium.serving.hub.usage`` for the rule)."""
        if not self.running:
            self._start()
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
            cached = self.gate.access_cached(t, p)
            if cached is None:
                a = await asyncio.to_thread(self.gate.load_access, t, p, name)
            else:
                a = cached
                if a.grant_id is not None:
                    self._refresh(self.gate.access, (t.id, p.org_id), self.gate.load_access, t, p)
            p.require(role)
            self._remember(akey, ckey, name, p, t, a)
        if count:
            if self.meter.needs_reservation(t.id, p.org_id, a.limits):  # one batch of a quota: a transaction
                await asyncio.to_thread(self.meter.reserve, t.id, p.org_id, a.limits)
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

    async def warm(self, version_id: str) -> None:
        """Load a version before traffic switches to it (alias moves)."""
        await self.endpoint(version_id)
        await self.inference().load(version_id)

    def invalidate(self, deployment: str | None = None) -> None:
        self._admitted.clear()
        self.gate.invalidate(deployment)

    async def aclose(self) -> None:
        """Stop: this loop's batchers and models go, the usage meter writes everything and stops
        (the next call starts it again)."""
        self.running = False
        loop = asyncio.get_running_loop()
        for lp, s in list(self._inference.items()):
            if lp is loop:
                await s.aclose()
        self._inference.clear()
        await asyncio.to_thread(self.meter.close)


__all__ = ["BatchCounter", "Call", "ServingRuntime"]
