"""AdaptiveBatcher under real concurrency: batches form, results reach the right callers."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serving_models import linear_onnx, linear_ref

from consortium.errors import InvalidInput, Unavailable
from consortium.serving.batching import AdaptiveBatcher, BatchInfo
from consortium.serving.predictor import OnnxPredictor


class SlowDouble:
    """run(): y = 2x after a pause, recording the rows of every call (thread-safe)."""

    def __init__(self, pause: float = 0.02, fail_on: float | None = None) -> None:
        self.pause, self.fail_on = pause, fail_on
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.lock:
            self.calls.append(len(feed["x"]))
        time.sleep(self.pause)
        if self.fail_on is not None and (feed["x"] == self.fail_on).any():
            raise ValueError(f"bad value {self.fail_on}")
        return {"y": feed["x"] * 2, "s": feed["x"].sum(axis=1)}


def test_lone_request_does_not_wait_for_max_wait() -> None:
    async def main() -> float:
        b = AdaptiveBatcher(SlowDouble(pause=0), max_batch_size=32, max_wait_ms=2000)
        await b.submit({"x": np.ones((1, 2))})  # warm the executor
        t0 = time.perf_counter()
        out = await b.submit({"x": np.ones((1, 2))})
        elapsed = time.perf_counter() - t0
        await b.aclose()
        assert out["y"].tolist() == [[2.0, 2.0]]
        return elapsed

    assert asyncio.run(main()) < 0.5


def test_concurrent_requests_form_batches_and_map_back() -> None:
    run = SlowDouble(pause=0.02)
    infos: list[BatchInfo] = []

    async def main() -> None:
        b = AdaptiveBatcher(run, max_batch_size=16, max_wait_ms=5, on_batch=infos.append, name="m")
        rng = np.random.default_rng(0)
        # 60 callers with 1-3 rows each and unique values, arriving in a burst
        inputs = [rng.normal(size=(int(rng.integers(1, 4)), 2)) + 100 * i for i in range(60)]
        outs = await asyncio.gather(*(b.submit({"x": x}) for x in inputs))
        for x, out in zip(inputs, outs, strict=True):
            np.testing.assert_array_equal(out["y"], x * 2)
            np.testing.assert_array_equal(out["s"], x.sum(axis=1))
        await b.aclose()
        assert sum(run.calls) == sum(len(x) for x in inputs)

    asyncio.run(main())
    assert max(run.calls) <= 16 and max(run.calls) > 3, run.calls
    assert len(run.calls) < 60 // 2, run.calls  # far fewer calls than requests
    assert [i.rows for i in infos] == run.calls and sum(i.requests for i in infos) == 60
    assert all(i.run_seconds >= 0.015 for i in infos)


def test_a_failing_request_fails_alone() -> None:
    run = SlowDouble(pause=0.01, fail_on=-7.0)

    async def main() -> list[object]:
        b = AdaptiveBatcher(run, max_batch_size=32)
        xs = [np.full((1, 2), float(i)) for i in range(10)] + [np.full((1, 2), -7.0)]
        res = await asyncio.gather(*(b.submit({"x": x}) for x in xs), return_exceptions=True)
        await b.aclose()
        return res

    res = asyncio.run(main())
    assert isinstance(res[-1], ValueError) and "bad value" in str(res[-1])
    assert all(isinstance(r, dict) for r in res[:-1])
    assert [float(r["y"][0, 0]) for r in res[:-1]] == [2.0 * i for i in range(10)]  # type: ignore[index]


def test_different_trailing_shapes_are_not_mixed() -> None:
    run = SlowDouble(pause=0.01)

    async def main() -> None:
        b = AdaptiveBatcher(run, max_batch_size=64)
        xs = [np.ones((1, 2 + (i % 2))) * i for i in range(20)]
        outs = await asyncio.gather(*(b.submit({"x": x}) for x in xs))
        for x, o in zip(xs, outs, strict=True):
            np.testing.assert_array_equal(o["y"], x * 2)
        await b.aclose()

    asyncio.run(main())
    assert sum(run.calls) == 20 and len(run.calls) < 20


def test_event_loop_stays_free_and_cancelled_callers_are_skipped() -> None:
    run = SlowDouble(pause=0.15)

    async def main() -> int:
        b = AdaptiveBatcher(run, max_batch_size=8)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        t = asyncio.create_task(ticker())
        first = asyncio.create_task(b.submit({"x": np.ones((1, 2))}))
        await asyncio.sleep(0.02)  # the first batch is now running in a thread
        doomed = asyncio.create_task(b.submit({"x": np.full((1, 2), 5.0)}))
        kept = asyncio.create_task(b.submit({"x": np.full((1, 2), 3.0)}))
        await asyncio.sleep(0.01)
        doomed.cancel()
        assert (await kept)["y"][0, 0] == 6.0 and (await first)["y"][0, 0] == 2.0
        t.cancel()
        await b.aclose()
        return ticks

    ticks = asyncio.run(main())
    assert ticks > 20  # the loop ran while the model calls blocked their threads
    assert run.calls == [1, 1]  # the cancelled request never reached the model


def test_with_two_slots_it_collects_up_to_max_wait() -> None:
    run = SlowDouble(pause=0.2)

    async def main() -> None:
        b = AdaptiveBatcher(run, max_batch_size=64, max_wait_ms=60, max_concurrency=2,
                            executor=ThreadPoolExecutor(2))
        first = asyncio.create_task(b.submit({"x": np.ones((1, 2))}))
        await asyncio.sleep(0.02)
        later = []
        for i in range(5):  # arrive 10 ms apart, within the 60 ms window
            later.append(asyncio.create_task(b.submit({"x": np.full((1, 2), float(i))})))
            await asyncio.sleep(0.01)
        await asyncio.gather(first, *later)
        await b.aclose()

    asyncio.run(main())
    assert run.calls == [1, 5]  # dispatched on the second slot without waiting for the first


def test_real_predictor_through_batcher() -> None:
    p = OnnxPredictor(linear_onnx(), threads=1)

    async def main() -> None:
        b = AdaptiveBatcher(lambda feed: p.predict(feed, validate=False), max_batch_size=32)
        xs = [np.random.default_rng(i).normal(size=(2, 4)).astype(np.float32) for i in range(40)]
        outs = await asyncio.gather(*(b.submit(p.validate({"x": x})) for x in xs))
        for x, o in zip(xs, outs, strict=True):
            np.testing.assert_allclose(o["y"], linear_ref(x), rtol=1e-5)
            assert o["label"].shape == (2,)
        await b.aclose()

    asyncio.run(main())


def test_closed_batcher_refuses_and_bad_settings_are_refused() -> None:
    async def main() -> None:
        b = AdaptiveBatcher(SlowDouble(pause=0))
        await b.submit({"x": np.ones((1, 1))})
        await b.aclose()
        with pytest.raises(Unavailable):
            await b.submit({"x": np.ones((1, 1))})

    asyncio.run(main())
    with pytest.raises(InvalidInput, match="max_batch_size"):
        AdaptiveBatcher(SlowDouble(), max_batch_size=0)
    with pytest.raises(InvalidInput, match="max_wait_ms"):
        AdaptiveBatcher(SlowDouble(), max_wait_ms=-1)
