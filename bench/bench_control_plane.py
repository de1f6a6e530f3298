"""Control-plane benchmark (issue 22, point 1): authenticated, audited list and get endpoints of the
hub on the ``make up`` demo data, with an owner token, at 1 and 32 connections, on SQLite and on
PostgreSQL, beside a bare FastAPI + SQLAlchemy endpoint that runs the hub's dataset-list query on
the same database, and beside the hub's code from before the fast control plane (``--old SRC``: a
``git worktree`` of the commit before it), all in the same run.

Each hub is one uvicorn process on loopback (uvloop, httptools), load from ``wrk``; every hub
request authenticates its token, checks access and appends an audit event that is committed
before the answer. The change cell alternates ``POST /api/v1/tokens`` and ``DELETE`` of the token
it created (a revocation: it also drops the control-plane caches, the worst case for them).

    python bench/bench_control_plane.py [--old /tmp/old/src] [--duration 5] [--pg postgresql://...]
    python bench/bench_control_plane.py --endpoints /api/v1/models,/api/v1/audit?limit=50 --out /tmp/cp.md

Writes ``bench/results/control_plane.md`` (``--out``: another file); ``--endpoints`` measures only
the named endpoints (``change``: the token cell), always beside the bare endpoint. The table gives
each cell's server CPU per request and its ratio to the bare endpoint's. ``--serve HOME DB_URL
PORT`` is the server side (seeds the demo, writes ``HOME/token``); ``--bare DB_URL PORT ORG_ID``
the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import ensure_wrk, run_wrk, wait_up

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "eb33c70"  # the commit before the fast control plane (group commit, caches)
ENDPOINTS = ["/api/v1/datasets", "/api/v1/me", "/api/v1/models", "/api/v1/audit?limit=50"]
GET_LUA = 'wrk.headers["Authorization"] = "Bearer %s"\n'
# a token create / revoke pair per two requests; each wrk thread keeps the ids it was given
CHANGE_LUA = '''
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Content-Type"] = "application/json"
local ids, n, threads = {}, 0, 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)  -- names differ between threads (each thread's random numbers repeat the others')
end
init = function(args)
  math.randomseed(os.time() * 100 + tid)  -- and between cells on the same hub
end
request = function()
  if #ids > 0 then
    return wrk.format("DELETE", "/api/v1/tokens/" .. table.remove(ids))
  end
  n = n + 1
  return wrk.format("POST", "/api/v1/tokens", nil,
                    string.format('{"name":"bench-%%d-%%d-%%d","days":1}', tid, math.random(1, 1000000000), n))
end
response = function(status, headers, body)
  local id = string.match(body, '"id"%%s*:%%s*"(tok_[%%w_]+)"')
  if status == 201 and id then table.insert(ids, id) end
end
'''


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(home: str, url: str, port: int) -> None:
    import uvicorn

    from consortium.config import Settings
    from consortium.demo import seed_demo
    from consortium.procutil import settle_gc
    from consortium.services import Services
    from consortium.web import create_app

    cfg = Settings(home=home, database_url=url)
    svc = Services.start(cfg)
    if not (Path(home) / "token").exists():  # a restart on the same data (bench_scale) keeps it as it is
        org = seed_demo(svc)["organizations"][0]
        (Path(home) / "token").write_text(json.dumps({"token": org["token"], "org": org["name"]}))
    app = create_app(cfg, services=svc)
    settle_gc()  # as `consortium serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


BARE = '''
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker
from consortium.store.db import make_engine
engine = make_engine(DB_URL)
factory = sessionmaker(engine)
app = FastAPI()
@app.get("/datasets")
def datasets():
    with factory() as s:
        rows = s.execute(text("SELECT id, name, description, created_at FROM datasets "
                              "WHERE org_id = :o ORDER BY name"), {"o": ORG_ID}).mappings().all()
        return [dict(r) for r in rows]
'''


def bare(url: str, port: int, org_id: str) -> None:
    import uvicorn

    ns: dict[str, Any] = {"DB_URL": url, "ORG_ID": org_id}
    exec(BARE, ns)  # noqa: S102 - the baseline app, kept as text to show it whole
    uvicorn.run(ns["app"], host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _start(cmd: list[str], src: Path, health: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{Path(__file__).parent}"}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_up(health, p, timeout=400)  # a shared, loaded machine seeds the demo slowly
    return p


def _stop(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def pg_scratch(admin_url: str, name: str) -> str:
    import sqlalchemy as sa

    eng = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def measure_hub(wrk: str, src: Path, tmp: Path, label: str, db: str, duration: int,
                endpoints: list[str], change: bool = True) -> tuple[dict[str, Any], str, str]:
    home = tmp / f"home-{label}"
    home.mkdir()
    port = free_port()
    p = _start([sys.executable, __file__, "--serve", str(home), db, str(port)], src,
               f"http://127.0.0.1:{port}/healthz")
    out: dict[str, Any] = {}
    try:
        info = json.loads((home / "token").read_text())
        lua = tmp / f"{label}-get.lua"
        lua.write_text(GET_LUA % info["token"])
        for ep in endpoints:
            url = f"http://127.0.0.1:{port}{ep}"
            run_wrk(wrk, url, lua, 4, 1, 1)  # warm
            out[ep] = {"1": run_wrk(wrk, url, lua, 1, 1, duration, p.pid),
                       "32": run_wrk(wrk, url, lua, 32, 2, duration, p.pid)}
        if change:
            lua = tmp / f"{label}-change.lua"
            lua.write_text(CHANGE_LUA % info["token"])
            url = f"http://127.0.0.1:{port}/api/v1/tokens"
            out["token create + revoke"] = {"1": run_wrk(wrk, url, lua, 1, 1, duration, p.pid),
                                            "32": run_wrk(wrk, url, lua, 32, 2, duration, p.pid)}
        org_id = _org_id(db, info["org"])
    finally:
        _stop(p)
    return out, db, org_id


def _org_id(db: str, name: str) -> str:
    from sqlalchemy import text

    from consortium.store.db import make_engine

    eng = make_engine(db)
    with eng.connect() as c:
        org_id: str = c.execute(text("SELECT id FROM organizations WHERE name = :n"), {"n": name}).scalar_one()
    eng.dispose()
    return org_id


def measure_bare(wrk: str, tmp: Path, db: str, org_id: str, duration: int) -> dict[str, Any]:
    port = free_port()
    p = _start([sys.executable, __file__, "--bare", db, str(port), org_id], ROOT / "src",
               f"http://127.0.0.1:{port}/datasets")
    try:
        lua = tmp / "plain.lua"
        lua.write_text("")
        url = f"http://127.0.0.1:{port}/datasets"
        run_wrk(wrk, url, lua, 4, 1, 1)
        return {"1": run_wrk(wrk, url, lua, 1, 1, duration, p.pid),
                "32": run_wrk(wrk, url, lua, 32, 2, duration, p.pid)}
    finally:
        _stop(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", nargs=3, metavar=("HOME", "DB_URL", "PORT"))
    ap.add_argument("--bare", nargs=3, metavar=("DB_URL", "PORT", "ORG_ID"))
    ap.add_argument("--old", default=os.environ.get("BENCH_OLD_SRC", ""),
                    help="src/ of the code before the fast control plane; default: a git worktree of "
                         f"{BEFORE} made for the run ('none': skip)")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--pg", default=os.environ.get("CONSORTIUM_TEST_POSTGRES_URL",
                                                   "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--endpoints", default=",".join([*ENDPOINTS, "change"]),
                    help="comma-separated, of: " + ", ".join(ENDPOINTS) + ", change (the token cell); "
                         "default: all")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "control_plane.md")
    a = ap.parse_args()
    chosen = a.endpoints.split(",")
    unknown = [e for e in chosen if e not in (*ENDPOINTS, "change")]
    if unknown:
        ap.error(f"unknown endpoints {unknown}; choose from {ENDPOINTS + ['change']}")
    endpoints, change = [e for e in ENDPOINTS if e in chosen], "change" in chosen
    if a.serve:
        serve(a.serve[0], a.serve[1], int(a.serve[2]))
        return
    if a.bare:
        bare(a.bare[0], int(a.bare[1]), a.bare[2])
        return
    wrk = ensure_wrk()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        worktree = None
        if not a.old:
            worktree = tmp / "before"
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), BEFORE], cwd=ROOT, check=True)
            a.old = str(worktree / "src")
        elif a.old == "none":
            a.old = ""
        for backend in a.backends.split(","):
            def db(tag: str, backend: str = backend) -> str:
                if backend == "sqlite":
                    return f"sqlite:///{tmp / f'{tag}.db'}"
                return pg_scratch(a.pg, f"bench_cp_{tag}")

            hub, url, org_id = measure_hub(wrk, ROOT / "src", tmp, f"{backend}-new", db("new"), a.duration,
                                           endpoints, change)
            r: dict[str, Any] = {"hub": hub, "bare": measure_bare(wrk, tmp, url, org_id, a.duration)}
            if a.old:
                r["old"] = measure_hub(wrk, Path(a.old), tmp, f"{backend}-old", db("old"), a.duration,
                                       endpoints, change)[0]
            results[backend] = r
            print(json.dumps({backend: r}, indent=1), flush=True)
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    write(results, a.duration, bool(a.old), a.out)


def write(results: dict[str, Any], duration: int, with_old: bool, out: Path) -> None:
    lines = ["## Control plane: authenticated, audited requests (issue 22)", "",
             f"The `make up` demo data, the hospital owner's token; one uvicorn process per server, loopback, "
             f"`wrk` load, {duration} s per cell (1 connection = sequential; 32 connections on 2 threads); "
             "server and load generator share the 2 cores. Every hub request resolves its token, checks "
             "access and appends an audit event committed before the answer. Baseline: a bare FastAPI + "
             "SQLAlchemy endpoint running the hub's dataset-list query on the same database (no auth, no "
             "audit)" + ("; *before*: the hub's code from before the fast control plane, same run." if with_old
                         else "."), "",
             "| database | endpoint | code | 1 conn req/s | p50 ms | p99 ms | 32 conn req/s | p50 ms | p99 ms "
             "| 32-conn ratio to bare | server CPU ms/req (1 / 32 conn) | CPU ratio to bare | errors |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for backend, r in results.items():
        base = r["bare"]
        rows = [("bare FastAPI + SQLAlchemy", "baseline", base)]
        for ep in r["hub"]:
            rows.append((ep, "after", r["hub"][ep]))
            if "old" in r and ep in r["old"]:
                rows.append((ep, "before", r["old"][ep]))
        for ep, code, cells in rows:
            one, many = cells["1"], cells["32"]
            ratio = many["rps"] / base["32"]["rps"]
            cpu = f"{one['cpu_us'] / 1000:.2f} / {many['cpu_us'] / 1000:.2f}"
            cpu_ratio = (f"{one['cpu_us'] / base['1']['cpu_us']:.1f}x / {many['cpu_us'] / base['32']['cpu_us']:.1f}x"
                         if base["1"]["cpu_us"] and base["32"]["cpu_us"] else "-")
            lines.append(f"| {backend} | `{ep}` | {code} | {one['rps']:.0f} | {one['p50']:.2f} | {one['p99']:.2f} "
                         f"| {many['rps']:.0f} | {many['p50']:.2f} | {many['p99']:.2f} | {ratio:.2f}x | {cpu} "
                         f"| {cpu_ratio} | {one['errors'] + many['errors']:.0f} |")
    lines += ["", "Goals (issue 22): at 32 connections >= 1,000 req/s with p99 <= 50 ms on both databases, "
              ">= 0.5x the bare endpoint, sequential p50 <= 2 ms. The change cell's requests are half "
              "creations, half revocations.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
