"""Data at scale (issue 22, point 2): the hub's lists and audit verification on a large database.

On SQLite and PostgreSQL: the ``make up`` demo, then bulk-inserted (metadata only, no blobs)
1,000 organizations, 10,000 datasets, 100,000 grants (1,000 of them to the hospital), 1,000
hospital tokens and 1,000,000 audit events continuing the demo's chain with valid keyed links
(so ``audit_verify`` passes). Lists (datasets, models, grants, audit, jobs, tokens, projects, each
with its default page) are measured with the hospital owner's token at 8 connections (``wrk``,
one uvicorn process) on the demo data first and on the large data after, in the same run; audit
verification over the whole chain in events per second, beside the keyed hash alone (the floor).

    python bench/bench_scale.py [--duration 4] [--events 1000000] [--backends sqlite,postgresql]

Writes ``bench/results/scale.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_control_plane import GET_LUA, ROOT, _start, _stop, free_port, pg_scratch
from bench_serving import ensure_wrk, run_wrk

LISTS = ["/api/v1/datasets", "/api/v1/models", "/api/v1/grants", "/api/v1/audit", "/api/v1/jobs",
         "/api/v1/tokens", "/api/v1/projects"]
CHUNK = 20_000


def measure(wrk: str, tmp: Path, home: Path, db: str, duration: int, label: str) -> dict[str, Any]:
    port = free_port()
    p = _start([sys.executable, str(Path(__file__).parent / "bench_control_plane.py"), "--serve", str(home), db,
                str(port)], ROOT / "src", f"http://127.0.0.1:{port}/healthz")
    try:
        token = json.loads((home / "token").read_text())["token"]
        lua = tmp / f"{label}.lua"
        lua.write_text(GET_LUA % token)
        out = {}
        for ep in LISTS:
            url = f"http://127.0.0.1:{port}{ep}"
            run_wrk(wrk, url, lua, 2, 1, 1)
            out[ep] = run_wrk(wrk, url, lua, 8, 2, duration, p.pid)
        return out
    finally:
        _stop(p)


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        conn.execute(table.insert(), rows[i:i + CHUNK])


def seed(home: Path, db: str, n_events: int) -> dict[str, float]:
    """Bulk rows through SQLAlchemy Core (executemany; COPY for PostgreSQL's audit events)."""
    from sqlalchemy import select, update

    from consortium.config import Settings
    from consortium.governance.audit import canonical, keyed_text, time_text
    from consortium.governance.secrets import hash_token
    from consortium.hub import Hub
    from consortium.store.tables.audit import AuditEvent, AuditHead
    from consortium.store.tables.base import utcnow
    from consortium.store.tables.data import Dataset
    from consortium.store.tables.grants import Grant
    from consortium.store.tables.identity import ApiToken, Organization, User

    rnd = random.Random(22)  # noqa: S311 - reproducible bench data, not secrets
    hub = Hub.start(Settings(home=home, database_url=db))
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    with hub.engine.begin() as c:
        hosp = c.execute(select(Organization.id).where(Organization.name == "st-marys-hospital")).scalar_one()
        owner = c.execute(select(User.id).where(User.email == "owner@st-marys-hospital.example")).scalar_one()
        now = utcnow()
        orgs = [{"id": f"org_s{i:05d}", "name": f"scale-{i:04d}", "display_name": f"Scale {i}", "description": "",
                 "created_at": now} for i in range(1000)]
        _insert(c, Organization.__table__, orgs)
        org_ids = [o["id"] for o in orgs]
        ds = [{"id": f"ds_s{i:06d}", "org_id": org_ids[i % 1000], "name": f"set-{i:05d}", "description": "bulk",
               "last_version": 0, "created_by": None, "created_at": now} for i in range(10_000)]
        _insert(c, Dataset.__table__, ds)
        grants = []
        for i in range(100_000):
            d = ds[i // 10]
            grantee = hosp if i % 100 == 0 else org_ids[rnd.randrange(1000)]
            if grantee == d["org_id"]:
                grantee = org_ids[(org_ids.index(grantee) + 1) % 1000]
            grants.append({"id": f"grt_s{i:06d}", "resource_type": "dataset", "resource_id": d["id"],
                           "owner_org_id": d["org_id"], "grantee_org_id": grantee, "grantee_project_id": None,
                           "permission": ("metadata", "compute", "download")[i % 3], "limits": {},
                           "created_by": owner, "created_at": now, "expires_at": None, "revoked_at": None})
        _insert(c, Grant.__table__, grants)
        toks = [{"id": f"tok_s{i:05d}", "user_id": owner, "org_id": hosp, "name": f"scale-{i}", "role": "viewer",
                 "token_hash": hash_token(f"csm_tok_scale_{i}"), "prefix": "csm_tok_scal", "created_at": now,
                 "expires_at": now + timedelta(days=30), "revoked_at": None, "last_used_at": None}
                for i in range(1000)]
        _insert(c, ApiToken.__table__, toks)
    times["rows_s"] = time.perf_counter() - t0
    # the chain: continue from the head with valid keyed links
    t0 = time.perf_counter()
    mac = hub.audit_chain.keys.mac
    actions = ("datasets.list", "datasets.get", "models.list", "predict", "grants.list")
    with hub.engine.begin() as c:
        head = c.execute(select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()).one()
        seq, prev = head.seq, head.last_hash
        pg = hub.engine.dialect.name == "postgresql"
        cols = ["seq", "time", "request_id", "actor_user_id", "actor_org_id", "action", "resource_type",
                "resource_id", "resource_org_id", "project_id", "outcome", "details", "prev_hash", "hash"]
        buf: list[dict[str, Any]] = []
        copy: Any = None
        copying: Any = None
        if pg:
            raw = c.connection.dbapi_connection
            cur = raw.cursor()  # type: ignore[union-attr]
            copying = cur.copy(f"COPY audit_events ({', '.join(cols)}) FROM STDIN")
            copy = copying.__enter__()  # the Copy object (the context manager only makes it)
        base = utcnow() - timedelta(days=30)
        try:
            for i in range(n_events):
                seq += 1
                t = base + timedelta(microseconds=i * 2000)
                org = hosp if i % 5 == 0 else org_ids[i % 1000]
                action = actions[i % 5]
                rid, res_org = f"ds_s{i % 10_000:06d}", org_ids[(i // 7) % 1000]
                details = canonical({"i": i})
                request_id = f"{i:016x}"
                h = mac(keyed_text(prev, seq, time_text(t), request_id, owner if org == hosp else None, org, action,
                                   "dataset", rid, res_org, None, "ok", details))
                row = {"seq": seq, "time": t, "request_id": request_id, "actor_user_id": owner if org == hosp else None,
                       "actor_org_id": org, "action": action, "resource_type": "dataset", "resource_id": rid,
                       "resource_org_id": res_org, "project_id": None, "outcome": "ok", "details": details,
                       "prev_hash": prev, "hash": h}
                prev = h
                if copy is not None:
                    copy.write_row([row[k] for k in cols])
                else:
                    buf.append(row)
                    if len(buf) >= CHUNK:
                        c.execute(AuditEvent.__table__.insert(), buf)
                        buf = []
        except BaseException as e:  # end the COPY first: a rollback inside one blocks
            if copy is not None:
                copying.__exit__(type(e), e, e.__traceback__)
            raise
        if copy is not None:
            copying.__exit__(None, None, None)
        elif buf:
            c.execute(AuditEvent.__table__.insert(), buf)
        c.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, last_hash=prev))
    times["audit_s"] = time.perf_counter() - t0
    if hub.engine.dialect.name == "postgresql":
        with hub.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            from sqlalchemy import text

            c.execute(text("ANALYZE"))
    hub.close()
    return times


def verify_speed(home: Path, db: str, floor_n: int = 200_000) -> dict[str, float]:
    """``audit_verify.verify`` over the whole chain, and the floor: the keyed hash alone over the
    texts of the first ``floor_n`` events, read into memory first."""
    from sqlalchemy import select

    from consortium.config import Settings
    from consortium.governance import audit_verify
    from consortium.governance.audit import keyed_text, time_text
    from consortium.hub import Hub
    from consortium.store.tables.audit import AuditEvent

    hub = Hub.start(Settings(home=home, database_url=db))
    with hub.session_factory() as s:
        r = audit_verify.verify(s, hub.audit_chain)
        assert r.ok, r.problem
        texts = [keyed_text(e.prev_hash, e.seq, time_text(e.time), e.request_id, e.actor_user_id, e.actor_org_id,
                            e.action, e.resource_type, e.resource_id, e.resource_org_id, e.project_id, e.outcome,
                            e.details)
                 for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq).limit(floor_n)).scalars()]
    mac = hub.audit_chain.keys.mac
    t0 = time.perf_counter()
    for text in texts:
        mac(text)
    floor = len(texts) / (time.perf_counter() - t0)
    hub.close()
    return {"events": r.events, "seconds": r.seconds, "eps": r.events / r.seconds, "floor_eps": floor}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    a = ap.parse_args()
    wrk = ensure_wrk()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for backend in a.backends.split(","):
            home = tmp / f"home-{backend}"
            home.mkdir()
            db = f"sqlite:///{tmp / 'scale.db'}" if backend == "sqlite" else pg_scratch(a.pg, "bench_scale")
            small = measure(wrk, tmp, home, db, a.duration, f"{backend}-small")
            t0 = time.perf_counter()
            seeded = seed(home, db, a.events)
            seeded["total_s"] = time.perf_counter() - t0
            large = measure(wrk, tmp, home, db, a.duration, f"{backend}-large")
            results[backend] = {"small": small, "large": large, "seed": seeded, "verify": verify_speed(home, db)}
            print(json.dumps({backend: results[backend]}, indent=1, default=str), flush=True)
    write(results, a)


def write(results: dict[str, Any], a: Any) -> None:
    lines = ["## Data at scale (issue 22)", "",
             f"The demo plus, bulk-inserted: 1,000 organizations, 10,000 datasets, 100,000 grants (1,000 to the "
             f"hospital), 1,000 hospital tokens, {a.events:,} audit events on a valid keyed chain. The hospital "
             f"owner's token, each list's default page, `wrk` at 8 connections for {a.duration} s, one uvicorn "
             "process; *small* is the same hub on the demo data alone, measured first in the same run.", "",
             "| database | list | small req/s | small p99 ms | large req/s | large p50 ms | large p99 ms "
             "| large/small p99 | errors |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for backend, r in results.items():
        for ep in LISTS:
            s, g = r["small"][ep], r["large"][ep]
            ratio = g["p99"] / max(s["p99"], 1e-9)
            lines.append(f"| {backend} | `{ep}` | {s['rps']:.0f} | {s['p99']:.1f} | {g['rps']:.0f} | {g['p50']:.1f} "
                         f"| {g['p99']:.1f} | {ratio:.2f}x | {s['errors'] + g['errors']:.0f} |")
    lines += ["", "| database | seeding (rows / audit chain / total) | audit verify | events/s | keyed hash alone "
              "(floor) | of the floor |", "|---|---|---:|---:|---:|---:|"]
    for backend, r in results.items():
        sd, v = r["seed"], r["verify"]
        lines.append(f"| {backend} | {sd['rows_s']:.0f} s / {sd['audit_s']:.0f} s / {sd['total_s']:.0f} s "
                     f"| {v['events']:,} events in {v['seconds']:.2f} s | **{v['eps']:,.0f}** | {v['floor_eps']:,.0f} "
                     f"| {v['eps'] / v['floor_eps']:.2f}x |")
    lines += ["", "Goals (issue 22): every list p99 <= 50 ms at 8 connections and within 1.5x of the small data; "
              "audit verification >= 200,000 events/s.", ""]
    out = Path(__file__).parent / "results" / "scale.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
