"""Benchmark of the serving core: adaptive batching vs. one model call per request.

32 asyncio callers send batch-1 requests to a digits-sized CNN (input (1, 8, 8), 10 classes)
through ``OnnxPredictor``; the only difference between the rows is how requests reach the
model. The baseline (one call per request in a thread pool, and inline on the event loop) is
measured in the same run. Results go to bench/results/serving_core.md.

    PYTHONPATH=src python bench/bench_serving_core.py [--requests 300] [--repeats 3]
    python bench/bench_serving_core.py --save-model /tmp/digits_cnn.onnx   # model for the HTTP baseline
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from consortium.serving.batching import AdaptiveBatcher
from consortium.serving.predictor import OnnxPredictor, available_cores

CALLERS = 32


def make_digits_cnn_onnx(path: Path) -> None:
    """A small CNN on (1, 8, 8) with 10 classes, exported with torch (random weights)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 4, 4)
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 2, 2)
        nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
    ).eval()
    x = torch.randn(2, 1, 8, 8)
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, external_data=False)


Call = Callable[[dict[str, np.ndarray]], Awaitable[dict[str, np.ndarray]]]


async def drive(call: Call, per_caller: int) -> tuple[float, list[float]]:
    """CALLERS concurrent callers, each sending ``per_caller`` sequential batch-1 requests."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(64, 1, 1, 8, 8)).astype(np.float32)
    latencies: list[float] = []

    async def caller(c: int) -> None:
        for i in range(per_caller):
            t0 = time.perf_counter()
            await call({"x": xs[(c + i) % 64]})
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(CALLERS)))
    return time.perf_counter() - t0, latencies


def run_mode(name: str, model: bytes, per_caller: int, repeats: int) -> dict[str, float | str]:
    cores = available_cores()
    batch_rows: list[int] = []

    async def once() -> tuple[float, list[float]]:
        loop = asyncio.get_running_loop()
        if name == "inline on the event loop (no thread)":
            p = OnnxPredictor(model, threads=cores)

            async def call(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                return p.predict(feed, validate=False)
            return await drive(call, per_caller)
        if name.startswith("thread pool"):
            p = OnnxPredictor(model, threads=1)
            pool = ThreadPoolExecutor(cores)

            async def call(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                return await loop.run_in_executor(pool, lambda: p.predict(feed, validate=False))
            try:
                return await drive(call, per_caller)
            finally:
                pool.shutdown()
        concurrency = 2 if "2 slots" in name else 1
        p = OnnxPredictor(model, threads=max(1, cores // concurrency))
        pool = ThreadPoolExecutor(concurrency)
        b = AdaptiveBatcher(lambda feed: p.predict(feed, validate=False), max_batch_size=32,
                            max_wait_ms=2.0, max_concurrency=concurrency, executor=pool,
                            on_batch=lambda info: batch_rows.append(info.rows))
        try:
            return await drive(b.submit, per_caller)
        finally:
            await b.aclose()
            pool.shutdown()

    runs = [asyncio.run(once()) for _ in range(repeats)]
    total = CALLERS * per_caller
    rps = [total / wall for wall, _ in runs]
    best = max(range(repeats), key=lambda i: rps[i])
    lat = sorted(runs[best][1])
    return {
        "mode": name,
        "rps": statistics.median(rps),
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "mean_batch": statistics.fmean(batch_rows) if batch_rows else 1.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="requests per caller")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "serving_core.md"))
    ap.add_argument("--save-model", metavar="PATH", help="only write the benchmark's ONNX model to PATH "
                    "(e.g. for bench/serving_baseline.py) and exit")
    args = ap.parse_args()
    if args.save_model:
        make_digits_cnn_onnx(Path(args.save_model))
        print(f"wrote {args.save_model}")
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits_cnn.onnx"
        make_digits_cnn_onnx(path)
        model = path.read_bytes()
    p = OnnxPredictor(model, threads=1)
    x1 = np.zeros((1, 1, 8, 8), np.float32)
    for _ in range(200):
        p.predict({"x": x1})
    t0 = time.perf_counter()
    for _ in range(2000):
        p.predict({"x": x1}, validate=False)
    bare_us = (time.perf_counter() - t0) / 2000 * 1e6

    modes = [
        "thread pool, one call per request (baseline)",
        "inline on the event loop (no thread)",
        "adaptive batching, 1 slot",
        "adaptive batching, 2 slots",
    ]
    rows = []
    for m in modes:
        r = run_mode(m, model, args.requests, args.repeats)
        rows.append(r)
        print(f"{m:48s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"mean batch {r['mean_batch']:.1f}", flush=True)
    base = float(rows[0]["rps"])
    lines = [
        "# Serving core: adaptive batching vs. one call per request",
        "",
        f"{CALLERS} concurrent asyncio callers, {args.requests} batch-1 requests each, median of "
        f"{args.repeats} runs; digits-sized CNN (1x8x8 -> 10 classes, ONNX from torch) in "
        f"onnxruntime on {available_cores()} cores ({platform.processor() or platform.machine()}). "
        f"A bare batch-1 `session.run` takes {bare_us:.0f} µs here. No HTTP: this isolates the "
        "batcher (HTTP figures come from bench/serving_baseline.py under wrk).",
        "",
        "| mode | req/s | ratio to baseline | p50 ms | p99 ms | mean rows per model call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['rps']:.0f} | {float(r['rps']) / base:.2f}x | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['mean_batch']:.1f} |")
    lines += ["", "Inline calls block the event loop, so callers do not overlap: their latency leaves out "
              "the time spent queued behind other callers, and an HTTP server doing this stops "
              "accepting connections while the model runs.", "",
              f"Command: `PYTHONPATH=src python bench/bench_serving_core.py --requests {args.requests} "
              f"--repeats {args.repeats}`", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
