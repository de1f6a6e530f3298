"""The serving core the HTTP routes call: lazily loaded models, adaptive batching, one per process.

``InferenceService`` ties a ``ModelCache`` (version id -> ``OnnxPredictor``) to one
``AdaptiveBatcher`` per loaded model. Loading and model calls run in threads so the event loop
stays free. ``ServingRuntime.inference`` keeps one per event loop and closes it on shutdown.

>>> import asyncio, onnx, onnx.helper as h, numpy as np
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])
>>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x],
...                  [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])])
>>> blobs = {"v1": h.make_model(g, opset_imports=[h.make_opsetid("", 17)]).SerializeToString()}
>>> async def main():
...     svc = InferenceService(blobs.__getitem__)
...     out = await svc.infer("v1", {"x": [[-1.0, 3.0]]})
...     await svc.aclose()
...     return out["y"]
>>> asyncio.run(main())
array([[0., 3.]], dtype=float32)
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from consortium.errors import BadRequest, InvalidInput
from consortium.serving.batching import AdaptiveBatcher, BatchInfo, RunFn
from consortium.serving.cache import CacheStats, Loader, ModelCache
from consortium.serving.predictor import OnnxPredictor, available_cores
from consortium.serving.signature import ModelSignature


@dataclass(frozen=True)
class BatchingConfig:
    """Adaptive batching settings; ``enabled=False`` runs every request on its own."""

    enabled: bool = True
    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    max_concurrency: int = 1
    # A request that finds its model idle (or any request, with batching off) runs on the event
    # loop when the model's recent calls took less than this: the thread hop (~0.1-0.3 ms) would
    # cost more than the call itself.
    inline_below_ms: float = 0.5


@dataclass(frozen=True)
class Stage:
    """Batch-level work around a model call, run with it (in the batch's thread): ``before`` turns
    the concatenated request arrays into model inputs, ``after`` turns model outputs into what
    callers get; both keep rows aligned. Requests of one stage name batch together, so per-row
    work such as preprocessing costs one numpy pass per batch instead of one per request.
    Inputs are validated against the model after ``before``."""

    name: str
    before: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    after: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class InferenceService:
    """Runs inference for model versions by id.

    ``loader(version_id) -> bytes`` fetches ONNX bytes (raise ``NotFound`` for unknown ids).
    ``on_batch(version_id, BatchInfo)`` is called after every model call, for monitoring.
    Methods raise ``NotFound`` (from the loader), ``InvalidInput`` (model does not load) and
    ``BadRequest`` (inputs that do not fit the model: names, dtypes, shapes).
    """

    def __init__(
        self,
        loader: Loader,
        *,
        max_bytes: int = 1 << 30,
        size_factor: float = 3.0,
        workers: int = 1,
        threads: int | None = None,
        batching: BatchingConfig = BatchingConfig(),
        on_batch: Callable[[str, BatchInfo], None] | None = None,
    ) -> None:
        self.batching = validate_batching(batching)
        self._on_batch = on_batch
        self.cache = ModelCache(loader, max_bytes=max_bytes, size_factor=size_factor, threads=threads,
                                workers=workers, on_evict=self._evicted)
        n = max(batching.max_concurrency, max(1, available_cores() // workers))
        self._executor = ThreadPoolExecutor(max_workers=n, thread_name_prefix="consortium-infer")
        self._batchers: dict[tuple[str, str], AdaptiveBatcher] = {}  # (version id, stage name)
        self._run_ms: dict[tuple[str, str], float] = {}  # moving average of call time per batcher
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()  # evicted batchers' aclose: referenced till done

    async def load(self, version_id: str) -> OnnxPredictor:
        """The predictor of ``version_id``, loaded in a thread on first use."""
        self._loop = asyncio.get_running_loop()
        loaded = self.cache.loaded(version_id)
        if loaded is not None:
            return loaded
        return await self._loop.run_in_executor(None, self.cache.get, version_id)

    async def signature(self, version_id: str) -> ModelSignature:
        """Inputs and outputs of a model version (loads it)."""
        return (await self.load(version_id)).signature

    async def infer(self, version_id: str, inputs: Mapping[str, Any], *, outputs: list[str] | None = None,
                    cast: bool = True, stage: Stage | None = None) -> dict[str, np.ndarray]:
        """Validate ``inputs`` against the model and run it, batched with concurrent requests.

        ``cast=False`` refuses dtype mismatches (use it for the Open Inference Protocol, where
        the client names the datatype); ``outputs`` limits the returned outputs. With ``stage``,
        ``inputs`` are arrays for ``stage.before`` and the result is what ``stage.after`` returns.
        """
        loaded = self.cache.loaded(version_id) if self._loop is not None else None
        predictor = loaded or await self.load(version_id)
        if stage is None:
            feed = predictor.validate(inputs, cast=cast)
        else:
            feed = {k: np.asarray(v) for k, v in inputs.items()}
        if outputs:
            known = [t.name for t in predictor.signature.outputs]
            unknown = [n for n in outputs if n not in known]
            if unknown:
                raise BadRequest(f"unknown output {unknown[0]!r}",
                                 hint=f"the model produces: {', '.join(known)}")
        key = (version_id, stage.name if stage is not None else "")
        cheap = self._run_ms.get(key, 1e9) < self.batching.inline_below_ms
        if self.batching.enabled and predictor.batchable:
            batcher = self._batcher(key, stage)
            if batcher.idle and cheap:
                result = self._timed(key, batcher.run, feed)
            else:
                result = await batcher.submit(feed)
        else:  # every request on its own: on the loop when cheap (as above), else in a thread
            run = self._runner(version_id, stage)
            if cheap:
                result = self._timed(key, run, feed)
            else:
                result = await asyncio.get_running_loop().run_in_executor(self._executor, self._timed, key,
                                                                          run, feed)
        return {k: result[k] for k in outputs} if outputs else result

    def _runner(self, version_id: str, stage: Stage | None) -> RunFn:
        """The call a batch (or a lone request) makes: the model, inside ``stage`` when given."""
        if stage is None:
            return lambda feed: self.cache.get(version_id).predict(feed, validate=False)
        before, after = stage.before, stage.after

        def run(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            p = self.cache.get(version_id)
            return after(p.predict(p.validate(before(feed)), validate=False))

        return run

    async def infer_rows(self, version_id: str, rows: Any) -> dict[str, np.ndarray]:
        """Single-input models: ``rows`` of flat values, reshaped to the input (the ``/predict`` body)."""
        predictor = await self.load(version_id)
        if len(predictor.signature.inputs) != 1:
            predictor.predict_rows(rows)  # raises BadRequest naming the inputs
        spec = predictor.signature.inputs[0]
        try:
            arr = np.asarray(rows) if not isinstance(rows, np.ndarray) else rows
        except (ValueError, TypeError):  # ragged rows, or values that are not numbers
            raise InvalidInput("the rows are not a rectangular array of numbers: every row needs the same "
                               "length (and nested lists the same shape)") from None
        inner = spec.shape[1:]
        if (arr.ndim == 2 and len(inner) > 1 and -1 not in inner
                and arr.shape[1] == int(np.prod(inner))):
            arr = arr.reshape((arr.shape[0], *inner))
        return await self.infer(version_id, {spec.name: arr})

    def _timed(self, key: tuple[str, str], run: RunFn, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One request's call, on the event loop or in a thread: timed (its time decides whether the
        next ones run on the loop) and reported to ``on_batch``."""
        t0 = time.perf_counter()
        result = run(feed)
        dt = time.perf_counter() - t0
        self._observe(key, dt)
        if self._on_batch is not None:
            rows = next(iter(feed.values())).shape[0] if feed else 0
            self._on_batch(key[0], BatchInfo(1, rows, dt, 0.0))
        return result

    def _observe(self, key: tuple[str, str], run_seconds: float) -> None:
        prev = self._run_ms.get(key)
        ms = run_seconds * 1000.0
        self._run_ms[key] = ms if prev is None else 0.8 * prev + 0.2 * ms

    def _batcher(self, key: tuple[str, str], stage: Stage | None) -> AdaptiveBatcher:
        b = self._batchers.get(key)
        if b is None:
            cfg = self.batching
            version_id = key[0]
            user = functools.partial(self._on_batch, version_id) if self._on_batch is not None else None

            def report(info: BatchInfo) -> None:
                if info.requests == 1:  # per-call time of a lone request decides inline runs
                    self._observe(key, info.run_seconds)
                if user is not None:
                    user(info)

            b = AdaptiveBatcher(self._runner(version_id, stage), max_batch_size=cfg.max_batch_size,
                                max_wait_ms=cfg.max_wait_ms, max_concurrency=cfg.max_concurrency,
                                executor=self._executor, on_batch=report, name=version_id)
            self._batchers[key] = b
        return b

    def _evicted(self, version_id: str) -> None:
        # Called from whichever thread loaded the model that pushed this one out.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._drop_batcher, version_id)

    def _drop_batcher(self, version_id: str) -> None:
        for key in [k for k in list(self._run_ms) if k[0] == version_id]:  # a thread may add one meanwhile
            del self._run_ms[key]
        for key, b in list(self._batchers.items()):
            if key[0] == version_id and b.idle:
                del self._batchers[key]
                task = asyncio.ensure_future(b.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    def unload(self, version_id: str) -> bool:
        """Forget a model version (e.g. its deployment was removed); True if it was loaded."""
        return self.cache.evict(version_id)

    def stats(self) -> CacheStats:
        return self.cache.stats()

    async def aclose(self) -> None:
        """Finish running calls, fail queued ones, free the threads."""
        await asyncio.gather(*(b.aclose() for b in self._batchers.values()), *self._closing,
                             return_exceptions=True)
        self._batchers.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


def validate_batching(cfg: BatchingConfig) -> BatchingConfig:
    """Check batching settings early, with messages that say how to fix them."""
    if cfg.max_batch_size < 1 or cfg.max_wait_ms < 0 or cfg.max_concurrency < 1:
        raise InvalidInput(f"bad batching settings {cfg}",
                           hint="max_batch_size >= 1, max_wait_ms >= 0, max_concurrency >= 1")
    return cfg
