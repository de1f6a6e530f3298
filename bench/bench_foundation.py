"""Foundation benchmarks, each against a baseline measured in the same run:

1. The cost of the security layers: an authenticated, audited ``GET /api/v1/grants/{id}`` on the
   hub (token lookup, membership, grant visibility, one audit event appended to the hash chain and
   committed per request) against a bare FastAPI endpoint returning the same JSON, both one uvicorn
   process on loopback, load from ``wrk``.
2. Audit verification speed over 100,000 events (events per second), against computing the
   keyed hash (MAC) of the same number of events with no database (the floor).

Writes ``bench/results/foundation.md``.  Run: ``python bench/bench_foundation.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import ensure_wrk, run_wrk, wait_up

BARE = '''
from fastapi import FastAPI
app = FastAPI()
BODY = json_body
@app.get("/grant")
def grant():
    return BODY
'''

LUA = 'wrk.headers["Authorization"] = "Bearer %s"\n'


def seed(home: Path) -> tuple[str, str, dict]:
    from consortium.config import Settings
    from consortium.governance import credentials, identity
    from consortium.governance.grants import grant_view
    from consortium.governance.roles import Role
    from consortium.services import Services
    from consortium.store.db import transaction
    from consortium.store.tables.base import new_id
    from consortium.store.tables.grants import Grant

    svc = Services.start(Settings(home=home))
    with transaction(svc.session_factory) as s:
        a = identity.create_org(s, svc.keys, "bench-a", "Bench A")
        b = identity.create_org(s, svc.keys, "bench-b", "Bench B")
        u = identity.create_user(s, "bench@a.example", "bench", "correct horse battery")
        identity.add_member(s, a.id, u.id, Role.owner)
        _, token = credentials.create_token(s, credentials.principal_for(u, a, Role.owner, "bench"), "bench")
        g = Grant(id=new_id("grt"), resource_type="dataset", resource_id="ds_bench", owner_org_id=a.id,
                  grantee_org_id=b.id, permission="metadata", limits={}, created_by=u.id)
        s.add(g)
        s.flush()
        body = json.loads(json.dumps(grant_view(s, g), default=str))
    svc.close()
    return token, g.id, body


def security_layers(duration: int) -> dict[str, dict[str, float]]:
    wrk = ensure_wrk()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        token, gid, body = seed(home)
        lua = Path(tmp) / "auth.lua"
        lua.write_text(LUA % token)
        plain = Path(tmp) / "plain.lua"
        plain.write_text("")
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(BARE.replace("json_body", repr(body)))
        env = {**os.environ, "CONSORTIUM_HOME": str(home), "CONSORTIUM_WORKERS": "0"}
        servers = {
            "bare FastAPI (baseline)": ([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", "8771",
                                         "--log-level", "warning", "--no-access-log"], "http://127.0.0.1:8771/grant",
                                        plain, tmp),
            "hub: token + grant check + audit": ([sys.executable, "-m", "consortium.cli.main", "serve", "--port",
                                                  "8772"], f"http://127.0.0.1:8772/api/v1/grants/{gid}", lua, tmp),
        }
        for label, (cmd, url, script, cwd) in servers.items():
            p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                wait_up(url.rsplit("/api", 1)[0] + "/healthz" if "/api" in url else url, p)
                run_wrk(wrk, url, script, 1, 1, 2)
                out[label] = {"sequential": run_wrk(wrk, url, script, 1, 1, duration),
                              "concurrent_32": run_wrk(wrk, url, script, 32, 2, duration)}
            finally:
                p.terminate()
                p.wait(10)
    return out


def audit_speed(n: int) -> dict[str, float]:
    from consortium.config import Settings
    from consortium.governance import audit_verify
    from consortium.governance.audit import EventDraft
    from consortium.services import Services
    from consortium.store.db import transaction

    with tempfile.TemporaryDirectory() as tmp:
        svc = Services.start(Settings(home=Path(tmp)))
        chain = svc.audit_chain
        t0 = time.perf_counter()
        batch = 5000
        for i in range(0, n, batch):
            with transaction(svc.session_factory) as s:
                chain.append(s, [EventDraft("bench.read", request_id=f"r{i + j}", actor_org_id="org_x",
                                            resource_type="dataset", resource_id=f"ds_{j}",
                                            details={"j": j}) for j in range(batch)])
        write_s = time.perf_counter() - t0
        with svc.session_factory() as s:
            r = audit_verify.verify(s, chain)
        assert r.ok and r.events == n, r
        svc.close()
    t0 = time.perf_counter()
    for _ in audit_verify.hash_only(n, chain):
        pass
    hash_s = time.perf_counter() - t0
    return {"events": n, "verify_s": r.seconds, "verify_eps": n / r.seconds, "hash_only_eps": n / hash_s,
            "append_eps": n / write_s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    sec = security_layers(args.duration)
    aud = audit_speed(args.events)
    base, hub = sec["bare FastAPI (baseline)"], sec["hub: token + grant check + audit"]
    lines = ["## Foundation: security layers and audit chain", "",
             "One uvicorn process each, loopback, `wrk` load (1 connection = sequential; 32 connections on 2 "
             f"threads), {args.duration} s per cell, SQLite, 2 cores shared by server and load generator.", "",
             "| endpoint | load | req/s | p50 ms | p99 ms | ratio to baseline |", "|---|---|---:|---:|---:|---:|"]
    for label, cells in sec.items():
        for load, m in cells.items():
            ratio = m["rps"] / base[load]["rps"]
            lines.append(f"| {label} | {load} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {ratio:.2f}x |")
    lines += ["", f"Every hub request above also appended one audit event to the hash chain and committed it "
              f"(the audit chain grew by about {hub['sequential']['rps'] * args.duration:.0f} events in the "
              "sequential cell).", "",
              f"Audit chain of {aud['events']:,} events (SQLite): verification {aud['verify_s']:.2f} s = "
              f"**{aud['verify_eps']:,.0f} events/s**; the keyed hash alone (no database, the floor) "
              f"{aud['hash_only_eps']:,.0f} events/s, so verification runs at "
              f"{aud['verify_eps'] / aud['hash_only_eps']:.2f}x of the floor. Appending in batches of 5,000: "
              f"{aud['append_eps']:,.0f} events/s.", ""]
    out = Path(__file__).parent / "results" / "foundation.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
