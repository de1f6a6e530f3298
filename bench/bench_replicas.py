"""Replicas benchmark: one hub replica against two behind haproxy, on one PostgreSQL database and
one S3 server (``rclone serve s3``), a read endpoint and a prediction, same run.

Two ``consortium serve`` processes (``tests/hubcluster.py``: the replica test's set-up), and
three ways in: replica A directly (no load balancer: the baseline), haproxy with A alone, and
haproxy with A and B (round robin). ``wrk`` drives each at 1 and 32 connections. The machine has
two cores, which wrk, haproxy, PostgreSQL and both hubs share, so a second replica cannot double
anything here; what the figures show is the balancer's cost and whether a second process helps
a hub that is CPU-bound in one Python process (the GIL). Writes ``bench/results/replicas.md``.

    PYTHONPATH=src .venv/bin/python bench/bench_replicas.py --duration 8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
from bench_serving import ensure_wrk, run_wrk  # noqa: E402
from hubcluster import HAPROXY, HAPROXY_CFG, cluster, free_port, missing  # noqa: E402

GET_LUA = 'wrk.headers["Authorization"] = "Bearer %s"\n'
POST_LUA = """wrk.method = "POST"
wrk.body = '{"inputs": [[5.1, 3.5, 1.4, 0.2]]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def _haproxy(tmp: Path, name: str, backends: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    servers = "\n".join(f"    server r{i} {u.removeprefix('http://')} check inter 1s" for i, u in enumerate(backends))
    cfg = tmp / f"haproxy-{name}.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port, servers=servers))
    p = subprocess.Popen([str(HAPROXY), "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return p, url
        except httpx.HTTPError:
            time.sleep(0.1)
    p.kill()
    raise RuntimeError("haproxy did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=8)
    a = ap.parse_args()
    why = missing()
    out = ROOT / "bench" / "results" / "replicas.md"
    if why is not None:
        out.write_text(f"## Hub replicas behind a load balancer\n\nNot measured: {why}.\n")
        print(why)
        return
    wrk = ensure_wrk()
    rows: list[tuple[str, str, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as d, cluster(Path(d), 2) as c:
        tmp = Path(d)
        one, one_url = _haproxy(tmp, "one", c.urls[:1])
        try:
            targets = [("replica A, no balancer", c.urls[0]), ("haproxy -> 1 replica", one_url),
                       ("haproxy -> 2 replicas", c.lb)]
            endpoints = [("GET /api/v1/me", "/api/v1/me", GET_LUA),
                         ("POST predict", f"/api/v1/deployments/{c.deployment}/predict", POST_LUA)]
            for ep_label, path, lua_text in endpoints:
                lua = tmp / f"{abs(hash(path))}.lua"
                lua.write_text(lua_text % c.owner)
                for label, base in targets:
                    run_wrk(wrk, base + path, lua, 4, 1, 1)  # warm both replicas' caches and pools
                    for conns in (1, 32):
                        r = run_wrk(wrk, base + path, lua, conns, 2 if conns > 1 else 1, a.duration)
                        rows.append((ep_label, label, conns, r))
                        print(f"{ep_label:16} {label:24} c={conns:2}: {r['rps']:7.0f} rps  p50 {r['p50']:6.2f} ms  "
                              f"p99 {r['p99']:7.2f} ms  non-2xx {r['errors']:.0f}", flush=True)
        finally:
            one.terminate()
            one.wait(10)
    lines = ["## Hub replicas behind a load balancer", "",
             f"Two `consortium serve` replicas on one PostgreSQL database and one S3 blob store "
             f"(`rclone serve s3`), Debian's haproxy 2.6 round-robin in front, `wrk` {a.duration} s per "
             "row, the owner's token (no quota), monitoring off. Baseline: replica A without a balancer, "
             "same run. `bench/bench_replicas.py`.", "",
             "| endpoint | way in | connections | req/s | p50 ms | p99 ms | non-2xx | vs replica A direct |",
             "|---|---|---|---|---|---|---|---|"]
    base = {(e, n): r["rps"] for e, lab, n, r in rows if lab.startswith("replica A")}
    for e, lab, n, r in rows:
        lines.append(f"| {e} | {lab} | {n} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']:.0f} | "
                     f"{r['rps'] / base[(e, n)]:.2f}x |")
    two = {(e, n): r["rps"] for e, lab, n, r in rows if lab == "haproxy -> 2 replicas"}
    onel = {(e, n): r["rps"] for e, lab, n, r in rows if lab == "haproxy -> 1 replica"}
    ratios = ", ".join(f"{e} at {n}: {two[(e, n)] / onel[(e, n)]:.2f}x" for (e, n) in two)
    lines += ["", f"Two replicas against one, both behind haproxy: {ratios}.", "",
              f"This machine has {os.cpu_count()} cores shared by wrk, haproxy, PostgreSQL and the hubs, so "
              "the second replica competes for the same CPUs the first one used: the figures measure the "
              "balancer's cost and what a second Python process (its own GIL) adds on a saturated "
              "machine, not how replicas on their own machines scale. Sequential (1 connection) latency "
              "shows haproxy's added hop."]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
