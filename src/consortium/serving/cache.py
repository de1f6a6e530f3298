"""Loaded models, kept per process and bounded in memory (least recently used goes first).

Models load lazily on first use through a ``loader`` (model version id -> ONNX bytes) that the
hub wires to its blob store. Each entry costs ``len(onnx bytes) * size_factor`` bytes: weights
are held once by onnxruntime plus its optimized graph and arenas, about 2-3x the file for small
CNNs. Concurrent first requests for one model load it once. Thread-safe.

>>> import onnx, onnx.helper as h
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])
>>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x],
...                  [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])])
>>> blobs = {"v1": h.make_model(g, opset_imports=[h.make_opsetid("", 17)]).SerializeToString()}
>>> cache = ModelCache(blobs.__getitem__, max_bytes=10_000_000)
>>> cache.get("v1").signature.inputs[0].name, "v1" in cache
('x', True)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from consortium.errors import InvalidInput
from consortium.serving.predictor import OnnxPredictor

Loader = Callable[[str], bytes]


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes_used: int
    max_bytes: int
    hits: int
    misses: int
    evictions: int


@dataclass
class _Entry:
    predictor: OnnxPredictor
    cost: int


class ModelCache:
    """LRU cache of ``OnnxPredictor``s keyed by model version id, bounded by approximate bytes.

    ``get`` raises what ``loader`` raises (e.g. ``NotFound``) and ``InvalidInput`` for a model
    that does not load; failures are not cached. A model larger than ``max_bytes`` is still
    served, alone in the cache. ``on_evict(version_id)`` is called (outside the lock) when an
    entry leaves, so per-model state such as batchers can be dropped too.
    """

    def __init__(
        self,
        loader: Loader,
        *,
        max_bytes: int = 1 << 30,
        size_factor: float = 3.0,
        threads: int | None = None,
        workers: int = 1,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise InvalidInput(f"max_bytes must be positive; got {max_bytes}")
        if size_factor < 1.0:
            raise InvalidInput(
                f"size_factor must be >= 1 (a model costs at least its file); got {size_factor}")
        self._loader = loader
        self.max_bytes = max_bytes
        self.size_factor = size_factor
        self._threads = threads
        self._workers = workers
        self._on_evict = on_evict
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, Future[OnnxPredictor]] = {}
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0

    def loaded(self, version_id: str) -> OnnxPredictor | None:
        """The predictor of ``version_id`` when it is loaded (a hit), else None; never loads."""
        with self._lock:
            entry = self._entries.get(version_id)
            if entry is None:
                return None
            self._entries.move_to_end(version_id)
            self._hits += 1
            return entry.predictor

    def get(self, version_id: str) -> OnnxPredictor:
        """The predictor of ``version_id``, loading it (once, even under concurrency) if needed."""
        with self._lock:
            entry = self._entries.get(version_id)
            if entry is not None:
                self._entries.move_to_end(version_id)
                self._hits += 1
                return entry.predictor
            pending = self._loading.get(version_id)
            if pending is None:
                self._misses += 1
                mine: Future[OnnxPredictor] = Future()
                self._loading[version_id] = mine
        if pending is not None:
            return pending.result()
        try:
            data = self._loader(version_id)
            predictor = OnnxPredictor(data, name=version_id, threads=self._threads, workers=self._workers)
        except BaseException as e:
            with self._lock:
                self._loading.pop(version_id, None)
            mine.set_exception(e)
            raise
        evicted = self._insert(version_id, predictor, int(len(data) * self.size_factor))
        mine.set_result(predictor)
        self._notify(evicted)
        return predictor

    def _insert(self, version_id: str, predictor: OnnxPredictor, cost: int) -> list[str]:
        evicted: list[str] = []
        with self._lock:
            self._loading.pop(version_id, None)
            old = self._entries.pop(version_id, None)
            if old is not None:
                self._bytes -= old.cost
            self._entries[version_id] = _Entry(predictor, cost)
            self._bytes += cost
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                key, entry = self._entries.popitem(last=False)
                self._bytes -= entry.cost
                self._evictions += 1
                evicted.append(key)
        return evicted

    def _notify(self, keys: list[str]) -> None:
        if self._on_evict is not None:
            for key in keys:
                self._on_evict(key)

    def evict(self, version_id: str) -> bool:
        """Drop one model (e.g. when its deployment is removed); True if it was loaded."""
        with self._lock:
            entry = self._entries.pop(version_id, None)
            if entry is not None:
                self._bytes -= entry.cost
                self._evictions += 1
        if entry is not None:
            self._notify([version_id])
        return entry is not None

    def clear(self) -> None:
        """Drop every loaded model."""
        with self._lock:
            keys = list(self._entries)
            self._entries.clear()
            self._bytes = 0
            self._evictions += len(keys)
        self._notify(keys)

    def __contains__(self, version_id: object) -> bool:
        with self._lock:
            return version_id in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[str]:
        """Loaded version ids, least recently used first."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._entries), self._bytes, self.max_bytes,
                              self._hits, self._misses, self._evictions)
