"""Adaptive batching for asyncio servers (home-made, about 200 lines; the policy is Triton's
dynamic batcher made latency-first).

Concurrent requests to one model are concatenated along their first (batch) axis, run as one
call in a thread (``run_in_executor``) so the event loop stays free, and the outputs are split
back per request. The policy:

* nothing running: dispatch after ``GATHER_TURNS`` turns of the event loop (microseconds, no
  timer), so that requests already read from their sockets join the batch;
* every execution slot busy: keep collecting until a slot frees or the batch is full;
* a slot free but another batch running (``max_concurrency > 1``): collect for up to
  ``max_wait_ms`` after the oldest queued request, or until the batch is full.

A batch is at most ``max_batch_size`` rows (a single larger request runs alone). Requests whose
trailing shapes or dtypes differ are never mixed. If a batched call fails, its requests are run
one by one so each caller gets its own result or error. ``on_batch`` receives a ``BatchInfo``
for every call made, for monitoring.

>>> import asyncio, numpy as np
>>> async def main():
...     b = AdaptiveBatcher(lambda feed: {"y": feed["x"] * 2}, max_batch_size=8)
...     outs = await asyncio.gather(*(b.submit({"x": np.full((1, 2), i)}) for i in range(3)))
...     await b.aclose()
...     return [int(o["y"][0, 0]) for o in outs]
>>> asyncio.run(main())
[0, 2, 4]
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consortium.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# Turns of the event loop a batch waits for company when nothing runs. Under load, requests
# parsed in the same turn as the first are still on their way to ``submit``. With 2 turns, the
# seed's digits CNN at 32 concurrent connections: 98% of model calls carried 17-32 requests
# (41% without), half as many calls, ~6% less CPU a request (bench/bench_serving.py set-up,
# interleaved runs of two hubs).
GATHER_TURNS = 2


@dataclass(frozen=True)
class BatchInfo:
    """One call to the model: how many requests and rows it carried, its run time and the
    queueing time of its oldest request (seconds)."""

    requests: int
    rows: int
    run_seconds: float
    wait_seconds: float


@dataclass
class _Item:
    inputs: dict[str, np.ndarray]
    rows: int | None  # None: not batchable (0-d input or inputs disagreeing on the first axis)
    key: tuple[Any, ...]
    future: asyncio.Future[dict[str, np.ndarray]]
    enqueued: float = field(default_factory=time.perf_counter)


def _describe(inputs: Mapping[str, np.ndarray]) -> tuple[int | None, tuple[Any, ...]]:
    if len(inputs) == 1:  # the common case, quickly
        ((k, a),) = inputs.items()
        return (a.shape[0] if a.ndim else None), ((k, a.dtype.str, a.shape[1:]),)
    firsts = {a.shape[0] if a.ndim else None for a in inputs.values()}
    rows = firsts.pop() if len(firsts) == 1 else None
    key = tuple(sorted((k, a.dtype.str, a.shape[1:]) for k, a in inputs.items()))
    return rows, key


class _Unsplittable(Exception):
    """An output without the batch's rows on its first axis."""


class AdaptiveBatcher:
    """Groups concurrent ``submit`` calls for one model into batched calls of ``run``.

    Bound to the event loop of its first ``submit``. ``run`` takes and returns dicts of arrays
    (validated inputs; see ``OnnxPredictor.predict(..., validate=False)``) and is called in
    ``executor`` (the loop's default when None). ``submit`` re-raises what ``run`` raised for
    that request, and ``Unavailable`` after ``aclose``.
    """

    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        max_concurrency: int = 1,
        executor: Executor | None = None,
        on_batch: Callable[[BatchInfo], None] | None = None,
        name: str = "",
    ) -> None:
        if max_batch_size < 1:
            raise InvalidInput(f"max_batch_size must be >= 1; got {max_batch_size}")
        if max_wait_ms < 0:
            raise InvalidInput(f"max_wait_ms must be >= 0; got {max_wait_ms}")
        if max_concurrency < 1:
            raise InvalidInput(f"max_concurrency must be >= 1; got {max_concurrency}")
        self.run = run  # public: a lone request may call it on the loop (InferenceService._timed)
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_concurrency = max_concurrency
        self._executor = executor
        self._on_batch = on_batch
        self.name = name
        self._pending: deque[_Item] = deque()
        self._in_flight = 0
        self._queued_rows = 0  # rows submitted and not yet taken (an upper bound: callers may leave)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()  # binds to the loop on its first wait, not here
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests queued and not yet dispatched."""
        return len(self._pending)

    @property
    def idle(self) -> bool:
        return not self._pending and self._in_flight == 0

    async def submit(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue one request (arrays with a shared first axis) and wait for its outputs."""
        if self._closed:
            raise Unavailable(f"model {self.name!r} is being unloaded", hint="retry the request")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._worker = loop.create_task(self._dispatch_loop(), name=f"batcher-{self.name}")
        elif self._loop is not loop:
            raise RuntimeError("an AdaptiveBatcher serves one event loop; create one per loop")
        feed = {k: v if type(v) is np.ndarray else np.asarray(v) for k, v in inputs.items()}
        rows, key = _describe(feed)
        item = _Item(feed, rows, key, loop.create_future())
        self._pending.append(item)
        self._queued_rows += rows if rows is not None else self.max_batch_size
        # While every slot is busy the dispatcher waits for a slot, unless a batch fills up:
        # waking it for every request would cost a task switch each.
        if self._in_flight < self.max_concurrency or self._queued_rows >= self.max_batch_size:
            self._wakeup.set()
        return await item.future

    async def _wait(self, timeout: float | None = None) -> None:
        self._wakeup.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    def _prune(self) -> None:
        while self._pending and self._pending[0].future.done():  # caller went away
            self._pending.popleft()

    def _ready_rows(self) -> int:
        first = self._pending[0]
        if first.rows is None:
            return self.max_batch_size
        return sum(i.rows or 0 for i in self._pending if i.key == first.key and not i.future.done())

    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closed:
                self._prune()
                if not self._pending:
                    await self._wait()
                    continue
                deadline = self._pending[0].enqueued + self.max_wait
                while True:
                    self._prune()
                    if not self._pending or self._ready_rows() >= self.max_batch_size or self._in_flight == 0:
                        break
                    if self._in_flight < self.max_concurrency:
                        remaining = deadline - time.perf_counter()
                        if remaining <= 0:
                            break
                        await self._wait(remaining)
                    else:
                        await self._wait()
                while self._in_flight >= self.max_concurrency:
                    await self._wait()
                for _ in range(GATHER_TURNS):
                    if self._queued_rows >= self.max_batch_size:
                        break
                    await asyncio.sleep(0)
                items = self._take()
                if items:
                    self._in_flight += 1
                    task = loop.create_task(self._execute(items))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # a bug here must not leave callers waiting forever
            log.exception("batcher %s stopped", self.name)
            self._fail_pending(e)
            raise

    def _take(self) -> list[_Item]:
        self._prune()
        if not self._pending:
            self._queued_rows = 0
            return []
        first = self._pending.popleft()
        taken, rows = [first], first.rows
        if rows is None or rows >= self.max_batch_size:
            taken_rows = rows if rows is not None else self.max_batch_size
            self._queued_rows = max(0, self._queued_rows - taken_rows)
            return taken
        rest: deque[_Item] = deque()
        while self._pending:
            item = self._pending.popleft()
            if item.future.done():
                continue
            if item.key == first.key and item.rows is not None and rows + item.rows <= self.max_batch_size:
                taken.append(item)
                rows += item.rows
            else:
                rest.append(item)
        self._pending = rest
        self._queued_rows = sum(i.rows if i.rows is not None else self.max_batch_size for i in rest)
        return taken

    async def _call(self, feed: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        t0 = time.perf_counter()
        out = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, feed)
        return out, time.perf_counter() - t0

    def _report(self, items: list[_Item], rows: int, seconds: float, started: float) -> None:
        if self._on_batch is not None:
            try:
                self._on_batch(BatchInfo(len(items), rows, seconds, started - items[0].enqueued))
            except Exception:  # monitoring must not break serving
                log.exception("on_batch callback failed")

    async def _execute(self, items: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            if len(items) > 1:
                try:
                    await self._execute_batched(items, started)
                    return
                except Exception:  # noqa: BLE001, S110 - the model's error, of any type, is met again below
                    pass  # run them one by one below, so each caller gets its own error
            for item in items:
                if item.future.done():
                    continue
                try:
                    out, seconds = await self._call(item.inputs)
                except Exception as e:  # noqa: BLE001 - whatever the model raised goes to its caller
                    if not item.future.done():
                        item.future.set_exception(e)
                    continue
                self._report([item], item.rows or 0, seconds, started)
                if not item.future.done():
                    item.future.set_result(out)
        finally:
            self._in_flight -= 1
            self._wakeup.set()

    async def _execute_batched(self, items: list[_Item], started: float) -> None:
        names = list(items[0].inputs)
        feed = {k: np.concatenate([i.inputs[k] for i in items], axis=0) for k in names}
        total = sum(i.rows or 0 for i in items)
        out, seconds = await self._call(feed)
        for k, v in out.items():
            if not isinstance(v, np.ndarray) or v.ndim == 0 or v.shape[0] != total:
                raise _Unsplittable(k)
        self._report(items, total, seconds, started)
        start = 0
        for item in items:  # row slices are views: no copies, and cheaper than np.split's per-piece calls
            end = start + (item.rows or 0)
            if not item.future.done():
                item.future.set_result({k: v[start:end] for k, v in out.items()})
            start = end

    def _fail_pending(self, error: BaseException) -> None:
        self._queued_rows = 0
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(
                    error if isinstance(error, Exception) else Unavailable("batcher stopped"))

    async def aclose(self) -> None:
        """Stop taking requests, fail queued ones with ``Unavailable``, let running calls finish."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._fail_pending(Unavailable(f"model {self.name!r} was unloaded", hint="retry the request"))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
