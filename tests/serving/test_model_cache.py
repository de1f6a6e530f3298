"""ModelCache: lazy loading, LRU eviction by approximate bytes, thread safety."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serving_models import W, linear_onnx

from consortium.errors import InvalidInput, NotFound
from consortium.serving.cache import ModelCache


@pytest.fixture()
def blobs() -> dict[str, bytes]:
    # Three versions with different weights, so a mix-up would show in the outputs.
    return {f"v{i}": linear_onnx(w=W * (i + 1)) for i in range(3)}


def _loader(blobs: dict[str, bytes], calls: list[str] | None = None):
    def load(version_id: str) -> bytes:
        if calls is not None:
            calls.append(version_id)
        if version_id not in blobs:
            raise NotFound(f"no model version {version_id!r}")
        return blobs[version_id]
    return load


def test_lazy_load_then_hit(blobs: dict[str, bytes]) -> None:
    calls: list[str] = []
    cache = ModelCache(_loader(blobs, calls), max_bytes=10**9, threads=1)
    assert len(cache) == 0
    p = cache.get("v1")
    assert cache.get("v1") is p and calls == ["v1"]
    y = p.predict({"x": np.ones((1, 4), np.float32)})["y"]
    np.testing.assert_allclose(y, np.ones((1, 4), np.float32) @ (W * 2) + [0.5, -0.5, 0.0], rtol=1e-6)
    s = cache.stats()
    assert (s.entries, s.hits, s.misses, s.bytes_used) == (1, 1, 1, len(blobs["v1"]) * 3)


def test_evicts_least_recently_used_by_bytes(blobs: dict[str, bytes]) -> None:
    cost = len(blobs["v0"]) * 2
    evicted: list[str] = []
    # Room for two models (each about `cost` bytes at size_factor 2), not three.
    cache = ModelCache(_loader(blobs), max_bytes=int(cost * 2.5), size_factor=2.0, threads=1,
                       on_evict=evicted.append)
    cache.get("v0")
    cache.get("v1")
    cache.get("v0")  # v0 is now the most recently used
    cache.get("v2")  # over budget: v1 goes
    assert evicted == ["v1"] and cache.keys() == ["v0", "v2"]
    assert cache.stats().bytes_used <= cache.max_bytes
    cache.get("v1")  # loads again, evicting v0
    assert evicted == ["v1", "v0"] and "v0" not in cache
    assert cache.evict("v2") and not cache.evict("v2")
    assert cache.keys() == ["v1"] and cache.stats().evictions == 3


def test_model_larger_than_budget_is_served_alone(blobs: dict[str, bytes]) -> None:
    cache = ModelCache(_loader(blobs), max_bytes=10, threads=1)
    cache.get("v0")
    cache.get("v1")
    assert cache.keys() == ["v1"]


def test_failures_propagate_and_are_not_cached(blobs: dict[str, bytes]) -> None:
    blobs["bad"] = b"\x08\x01 not an onnx model"
    calls: list[str] = []
    cache = ModelCache(_loader(blobs, calls), threads=1)
    with pytest.raises(NotFound):
        cache.get("missing")
    with pytest.raises(InvalidInput, match="onnxruntime cannot load"):
        cache.get("bad")
    with pytest.raises(InvalidInput):
        cache.get("bad")
    assert calls == ["missing", "bad", "bad"] and len(cache) == 0


def test_concurrent_first_requests_load_once(blobs: dict[str, bytes]) -> None:
    calls: list[str] = []
    gate = threading.Event()
    inner = _loader(blobs, calls)

    def slow_loader(version_id: str) -> bytes:
        gate.wait(5)
        return inner(version_id)

    cache = ModelCache(slow_loader, threads=1)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get, "v2") for _ in range(8)]
        time.sleep(0.05)  # let every thread reach get() while the load is blocked
        gate.set()
        predictors = {id(f.result(timeout=10)) for f in futures}
    assert len(predictors) == 1 and calls == ["v2"]
    assert cache.stats().misses == 1 and cache.stats().hits + cache.stats().misses <= 8


def test_bad_settings_are_refused(blobs: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInput, match="max_bytes"):
        ModelCache(_loader(blobs), max_bytes=0)
    with pytest.raises(InvalidInput, match="size_factor"):
        ModelCache(_loader(blobs), size_factor=0.5)
