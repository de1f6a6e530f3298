"""InferenceService: cache + batching + validation, as the routes use them."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serving_models import W, linear_onnx, linear_ref

from consortium.errors import BadRequest, InvalidInput, NotFound
from consortium.serving.batching import BatchInfo
from consortium.serving.service import BatchingConfig, InferenceService


def _loader(blobs: dict[str, bytes]):
    def load(version_id: str) -> bytes:
        if version_id not in blobs:
            raise NotFound(f"no model version {version_id!r}")
        return blobs[version_id]
    return load


def test_concurrent_infer_is_batched_and_correct() -> None:
    blobs = {"a": linear_onnx(), "b": linear_onnx(w=W * -1)}
    seen: list[tuple[str, BatchInfo]] = []

    async def main() -> None:
        svc = InferenceService(_loader(blobs), threads=1,
                               batching=BatchingConfig(max_batch_size=16),
                               on_batch=lambda vid, info: seen.append((vid, info)))
        xs = [np.random.default_rng(i).normal(size=(1, 4)).astype(np.float32) for i in range(48)]
        outs = await asyncio.gather(*(svc.infer("a" if i % 2 else "b", {"x": x}) for i, x in enumerate(xs)))
        for i, (x, o) in enumerate(zip(xs, outs, strict=True)):
            ref = linear_ref(x) if i % 2 else x @ (W * -1) + [0.5, -0.5, 0.0]
            np.testing.assert_allclose(o["y"], ref, rtol=1e-5, atol=1e-6)
        only = await svc.infer("a", {"x": xs[0].astype(np.float64)}, outputs=["label"])
        assert list(only) == ["label"]
        await svc.aclose()

    asyncio.run(main())
    assert {vid for vid, _ in seen} == {"a", "b"}
    assert sum(i.requests for _, i in seen) == 49
    assert max(i.rows for _, i in seen) > 1  # batches formed


def test_errors_reach_the_caller() -> None:
    blobs = {"a": linear_onnx(), "bad": b"\x08\x01broken"}

    async def main() -> None:
        svc = InferenceService(_loader(blobs), threads=1)
        with pytest.raises(NotFound):
            await svc.infer("nope", {"x": np.ones((1, 4), np.float32)})
        with pytest.raises(InvalidInput):
            await svc.infer("bad", {"x": np.ones((1, 4), np.float32)})
        with pytest.raises(BadRequest, match=r"expects \[-1, 4\]"):
            await svc.infer("a", {"x": np.ones((1, 5), np.float32)})
        with pytest.raises(BadRequest, match="FP32"):
            await svc.infer("a", {"x": np.ones((1, 4))}, cast=False)
        with pytest.raises(BadRequest, match="unknown output 'z'"):
            await svc.infer("a", {"x": np.ones((1, 4), np.float32)}, outputs=["z"])
        await svc.aclose()

    asyncio.run(main())


def test_fixed_batch_model_runs_unbatched_and_rows_are_reshaped() -> None:
    blobs = {"fixed": linear_onnx(batch=1)}

    async def main() -> None:
        svc = InferenceService(_loader(blobs), threads=1)
        outs = await asyncio.gather(*(svc.infer_rows("fixed", [[1, 2, 3, float(i)]]) for i in range(5)))
        for i, o in enumerate(outs):
            np.testing.assert_allclose(o["y"], linear_ref(np.array([[1, 2, 3, i]])), rtol=1e-6)
        await svc.aclose()

    asyncio.run(main())


def test_eviction_drops_the_batcher() -> None:
    blobs = {f"v{i}": linear_onnx(w=W * i) for i in range(3)}

    async def main() -> None:
        svc = InferenceService(_loader(blobs), threads=1, max_bytes=len(blobs["v0"]) * 3 * 2)
        for vid in ("v0", "v1", "v2"):
            await svc.infer(vid, {"x": np.ones((1, 4), np.float32)})
        await asyncio.sleep(0)  # let the eviction notice run on the loop
        assert svc.cache.keys() == ["v1", "v2"]
        assert [v for v, _ in svc._batchers] == ["v1", "v2"]
        assert svc.unload("v1") and not svc.unload("v1")
        out = await svc.infer("v0", {"x": np.ones((1, 4), np.float32)})  # reloads
        np.testing.assert_allclose(out["y"], [[0.5, -0.5, 0.0]])
        await svc.aclose()

    asyncio.run(main())


def test_bad_batching_settings() -> None:
    with pytest.raises(InvalidInput, match="max_batch_size"):
        InferenceService(_loader({}), batching=BatchingConfig(max_batch_size=0))


def test_batching_off_runs_each_request_alone_and_cheap_models_on_the_loop() -> None:
    import threading

    blobs = {"a": linear_onnx()}
    seen: list[tuple[BatchInfo, str]] = []

    async def main() -> None:
        # a threshold far above the model's microseconds: a loaded machine's first (thread) run, which
        # decides where the next ones go, may take a few milliseconds, over the 0.5 ms default
        svc = InferenceService(_loader(blobs), threads=1, batching=BatchingConfig(enabled=False, inline_below_ms=50),
                               on_batch=lambda vid, info: seen.append((info, threading.current_thread().name)))
        xs = [np.full((1, 4), float(i), np.float32) for i in range(6)]
        first = await svc.infer("a", {"x": xs[0]})  # its time is unknown yet: a thread
        outs = await asyncio.gather(*(svc.infer("a", {"x": x}) for x in xs[1:]))
        for x, o in zip(xs, [first, *outs], strict=True):
            np.testing.assert_allclose(o["y"], linear_ref(x), rtol=1e-5, atol=1e-6)
        await svc.aclose()
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert [i.requests for i, _ in seen] == [1] * 6  # never batched, every call reported
    assert seen[0][1].startswith("consortium-infer")
    assert {t for _, t in seen[1:]} == {loop_thread}  # a microsecond model: no thread hop
