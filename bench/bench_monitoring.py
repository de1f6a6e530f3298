"""Monitoring benchmark: the platform's /predict with monitoring off vs. on (metrics, latency
histograms; prediction logging at 0%, 1% and 100% sampling), same model, same run.

Two hub processes on loopback (SQLite each): one started with ``CONSORTIUM_MONITORING=off`` (the
operator setting: signed prediction ids only), one normal with three deployments of the same
model at sample rates 0, 0.01 and 1. Load from ``wrk`` (reusing ``bench_serving``'s helpers),
cells interleaved over ``--rounds`` rounds, median reported. Also the in-process cost per call of
the hot-path hooks. Writes ``bench/results/monitoring.md``.

    PYTHONPATH=src .venv/bin/python bench/bench_monitoring.py --duration 8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import LUA, PY, ROOT, ensure_wrk, run_wrk, train_digits, wait_up

RATES = {"on": ["digits=0.0", "digits-1pct=0.01", "digits-all=1.0"], "off": []}

CELLS = [("off", "monitoring off", "digits"), ("on", "on, sampling 0%", "digits"),
         ("on", "on, sampling 1%", "digits-1pct"), ("on", "on, sampling 100%", "digits-all")]


def hook_cost_us() -> dict[str, float]:
    """µs per call of the hot-path hooks (``sample_and_log``, ``observe``, ``on_batch``), monitoring off,
    on and unsampled, and on and sampled (the digits model's answer: one row, ten classes)."""
    from consortium.monitoring.recorder import Monitor

    out = {}
    names = [str(i) for i in range(10)]
    row = [[0.0] * 64]
    for label, enabled, rate in (("off", False, 0.0), ("unsampled", True, 0.0), ("sampled", True, 1.0)):
        m = Monitor(None, interval=0, enabled=enabled)
        m.configure("dep_00000000000000aa", rate)
        answer = {"predictions": ["1"], "probabilities": [[0.1] * 10], "class_names": names}
        n = 50_000
        t0 = time.perf_counter()
        for i in range(n):
            m.sample_and_log("dep_00000000000000aa", "org_00000000000000bb", "org_00000000000000cc",
                             "mv_00000000000000dd", "predict", row, answer)
            m.observe("dep_00000000000000aa", "digits", "org_00000000000000bb", "org_00000000000000cc",
                      "caller", 200, 0.0006)
            m.on_batch("bench-org/digits:1", 1, 1)
            if i % 10_000 == 0:
                m._queue.clear()
        out[label] = (time.perf_counter() - t0) / n * 1e6
    return out


def writer_cost_us() -> float:
    """CPU µs of background work (JSON, sealing, SQLite insert) per sampled prediction, 2,000 a flush."""
    from consortium.config import Settings
    from consortium.governance import identity
    from consortium.monitoring.recorder import Monitor
    from consortium.services import Services
    from consortium.store.db import transaction

    svc = Services.start(Settings(home=tempfile.mkdtemp(prefix="bench-writer-")))
    with transaction(svc.session_factory) as s:
        org = identity.create_org(s, svc.keys, "w-org", "W")
    m = Monitor(svc, metrics=svc.metrics, interval=0)
    m.configure("dep_1", 1.0)
    names = [str(i) for i in range(10)]
    best = float("inf")
    for _ in range(3):
        for _ in range(2000):
            answer = {"predictions": ["1"], "probabilities": [[0.1234567] * 10], "class_names": names}
            m.sample_and_log("dep_1", org.id, org.id, "mv_1", "predict", [[0.5] * 64], answer)
        t0 = time.thread_time()  # CPU: what competes with serving; the commit's fsync waits are not counted
        m.flush()
        best = min(best, (time.thread_time() - t0) / 2000 * 1e6)
    svc.close()
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    onnx_path, state_path = train_digits(tmp)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    ports = {"off": 18190, "on": 18191}
    hubs = {}
    for mode, port in ports.items():
        log = open(tmp / f"hub-{mode}.log", "wb")  # never a pipe: it can fill up
        hubs[mode] = subprocess.Popen([PY, str(ROOT / "bench/benchhub.py"), str(tmp / f"home-{mode}"), str(onnx_path),
                                       str(state_path), str(port), "--setting", f"monitoring={mode}",
                                       *(f"--rate={r}" for r in RATES[mode])], env=env, stderr=log)
    print(f"server logs in {tmp}", flush=True)
    try:
        from consortium.data.samples import load_sample

        row = json.dumps({"inputs": [load_sample("digits").images[0].reshape(-1).astype(float).tolist()]})
        luas = {}
        for mode, port in ports.items():
            wait_up(f"http://127.0.0.1:{port}/healthz", hubs[mode])
            token = (tmp / f"home-{mode}" / "token").read_text()
            luas[mode] = tmp / f"{mode}.lua"
            luas[mode].write_text(LUA % (row, f'wrk.headers["Authorization"] = "Bearer {token}"'))
            with httpx.Client(headers={"authorization": f"Bearer {token}"}) as c:
                for _, _, dep in (c_ for c_ in CELLS if c_[0] == mode):
                    r = c.post(f"http://127.0.0.1:{port}/api/v1/deployments/{dep}/predict", content=row,
                               headers={"content-type": "application/json"})
                    assert r.status_code == 200 and "prediction_id" in r.json(), r.text
        raw: dict[str, dict[str, list[dict[str, float]]]] = {}
        for load, conns, threads in (("sequential (1 connection)", 1, 1), ("32 concurrent", 32, 2)):
            raw[load] = {label: [] for _, label, _ in CELLS}
            for rnd in range(args.rounds):
                order = CELLS[rnd % len(CELLS):] + CELLS[:rnd % len(CELLS)]  # rotate: no cell always first
                for mode, label, dep in order:
                    url = f"http://127.0.0.1:{ports[mode]}/api/v1/deployments/{dep}/predict"
                    if rnd == 0:
                        run_wrk(wrk, url, luas[mode], conns, threads, 2)  # warm-up
                    res = run_wrk(wrk, url, luas[mode], conns, threads, args.duration)
                    raw[load][label].append(res)
                    print(load, label, rnd, res, flush=True)
        time.sleep(2.5)  # let the writer flush
        token = (tmp / "home-on" / "token").read_text()
        with httpx.Client(headers={"authorization": f"Bearer {token}"}) as c:
            logged = {dep: len(c.get(f"http://127.0.0.1:{ports['on']}/api/v1/deployments/{dep}/predictions",
                                     params={"limit": 1000, "payload": "false"}).json())
                      for dep in ("digits", "digits-1pct")}
            scrape = c.get(f"http://127.0.0.1:{ports['on']}/metrics").text
        logged_all = next((float(line.split()[-1]) for line in scrape.splitlines()
                           if line.startswith("consortium_predictions_logged_total")), 0.0)
    finally:
        for p in hubs.values():
            p.terminate()
            p.wait(10)
    write_report(raw, logged, logged_all, hook_cost_us(), writer_cost_us(), args)


def write_report(raw: dict[str, dict[str, list[dict[str, float]]]], logged: dict[str, int], logged_all: float,
                 hooks: dict[str, float], writer_us: float, args: argparse.Namespace) -> None:
    lines = ["# Monitoring: cost on the prediction path", "",
             f"Digits CNN (ONNX) on the platform's `/predict`, one uvicorn hub process per mode on loopback "
             f"(SQLite), `wrk` for {args.duration} s per cell, cells interleaved (order rotated) over "
             f"{args.rounds} rounds, "
             f"median shown; 2 cores shared by hubs and load generator. *Off*: the hub started with "
             f"`CONSORTIUM_MONITORING=off` (signed prediction ids only). *On*: Prometheus series, per-minute "
             f"latency histograms, prediction ids, and the prediction log at the given sample rate (requests and "
             f"responses sealed with the owner's key and written by a background thread once a second).", "",
             "| load | mode | req/s (median) | vs off | p50 ms | p99 ms | runs (req/s) |",
             "|---|---|---:|---:|---:|---:|---|"]
    summary = {}
    for load, cells in raw.items():
        off = statistics.median(r["rps"] for r in cells["monitoring off"])
        for label, runs in cells.items():
            rps = statistics.median(r["rps"] for r in runs)
            summary[(load, label)] = rps / off
            lines.append(f"| {load} | {label} | {rps:.0f} | {rps / off:.3f}x | "
                         f"{statistics.median(r['p50'] for r in runs):.2f} | "
                         f"{statistics.median(r['p99'] for r in runs):.2f} | "
                         f"{', '.join(str(round(r['rps'])) for r in runs)} |")
    cost = {load: 1 - summary[(load, "on, sampling 1%")] for load in raw}
    lines += ["", "- Goal: 1% sampling costs < 5% of throughput: " + "; ".join(
        f"{load}: **{c * 100:.1f}%**" for load, c in cost.items()) + ".",
        f"- Hot-path hooks in process (`sample_and_log`, `observe`, `on_batch`), µs per call: {hooks['off']:.2f} with "
        f"monitoring off (signing the id), {hooks['unsampled']:.2f} on and unsampled (signed id, latency "
        f"counts), {hooks['sampled']:.2f} sampled (enqueue only).",
        f"- Background writer per sampled prediction (JSON, sealing with the owner's key, SQLite insert, "
        f"2,000 a flush): {writer_us:.1f} µs of CPU, off the request but in the same process.",
        f"- Predictions logged by the hub during the run: {logged_all:.0f} in total; the 1% deployment's log holds "
        f"{logged['digits-1pct']} (listing capped at 1000), the 0% deployment's {logged['digits']}.",
        "", f"Command: `PYTHONPATH=src .venv/bin/python bench/bench_monitoring.py --duration {args.duration} "
        f"--rounds {args.rounds}`", ""]
    out = ROOT / "bench/results/monitoring.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
