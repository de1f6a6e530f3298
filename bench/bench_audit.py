"""The keyed audit chain against the plain SHA-256 chain it replaced, measured in the same run.

The old chain's code is read from git (``--before``, default: the commit before the keyed chain)
and runs on its own SQLite database; the keyed chain runs on another; a copy of the old database,
upgraded by the new code's first start (sealed), is verified on the legacy path. Rounds alternate;
medians of wall-clock and CPU (process) time, since the host is shared. Also: one event appended
and committed per transaction, as every request does.

Run: ``python bench/bench_audit.py --events 100000`` (writes ``bench/results/audit.md``).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def old_module(rev: str, tmp: Path) -> ModuleType:
    src = subprocess.run(["git", "show", f"{rev}:src/consortium/governance/audit.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = tmp / "old_audit.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_audit", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_audit"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def timed(fn: Callable[[], Any], rounds: list[tuple[float, float]]) -> None:
    w, c = time.perf_counter(), time.process_time()
    fn()
    rounds.append((time.perf_counter() - w, time.process_time() - c))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--appends", type=int, default=1000, help="single-event transactions timed")
    ap.add_argument("--before", default="7d17aed~1", help="git revision of the plain SHA-256 chain")
    args = ap.parse_args()
    from consortium.config import Settings
    from consortium.governance import audit_verify
    from consortium.governance.audit import EventDraft
    from consortium.services import Services
    from consortium.store.db import make_engine, make_session_factory, migrate, transaction

    n, tmp = args.events, Path(tempfile.mkdtemp())
    old = old_module(args.before, tmp)

    def drafts(i: int, k: int = 5000) -> list[EventDraft]:
        return [EventDraft("bench.read", request_id=f"r{i + j}", actor_org_id="org_x", resource_type="dataset",
                           resource_id=f"ds_{j}", details={"j": j}) for j in range(k)]

    (tmp / "old").mkdir()
    engine = make_engine(f"sqlite:///{tmp / 'old' / 'consortium.db'}")
    migrate(engine)
    f_old = make_session_factory(engine)
    with transaction(f_old) as s:
        old.ensure_head(s)
    for i in range(0, n, 5000):
        with transaction(f_old) as s:
            old.append(s, drafts(i))
    svc = Services.start(Settings(home=tmp / "new"))
    for i in range(0, n, 5000):
        with transaction(svc.session_factory) as s:
            svc.audit_chain.append(s, drafts(i))
    shutil.copytree(tmp / "old", tmp / "upgraded")
    up = Services.start(Settings(home=tmp / "upgraded"))  # seals the old events

    def v_old() -> None:
        with f_old() as s:
            assert old.verify(s).ok

    def v_new() -> None:
        with svc.session_factory() as s:
            assert audit_verify.verify(s, svc.audit_chain).ok

    def v_up() -> None:
        with up.session_factory() as s:
            r = audit_verify.verify(s, up.audit_chain)
            assert r.ok and r.legacy_events == n

    def a_old() -> None:
        for i in range(args.appends):
            with transaction(f_old) as s:
                old.append(s, drafts(i, 1))

    def a_new() -> None:
        for i in range(args.appends):
            with transaction(svc.session_factory) as s:
                svc.audit_chain.append(s, drafts(i, 1))

    cells = {"verify: plain SHA-256 chain (before)": (v_old, n), "verify: keyed chain (after)": (v_new, n),
             "verify: old chain upgraded and sealed (after)": (v_up, n),
             "append 1 event + commit (before)": (a_old, args.appends),
             "append 1 event + commit (after)": (a_new, args.appends)}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cells}
    for _ in range(args.rounds):
        for label, (fn, _count) in cells.items():
            timed(fn, times[label])
    lines = ["## Audit chain: keyed (BLAKE2b MAC) against the plain SHA-256 chain", "",
             f"{n:,} events, SQLite, {args.rounds} alternating rounds, median; 2 shared cores.", "",
             "| what | events/s (wall) | events/s (CPU) |", "|---|---:|---:|"]
    for label, (_fn, count) in cells.items():
        wall = statistics.median(t[0] for t in times[label])
        cpu = statistics.median(t[1] for t in times[label])
        lines.append(f"| {label} | {count / wall:,.0f} | {count / cpu:,.0f} |")
    svc.close()
    up.close()
    engine.dispose()
    shutil.rmtree(tmp)
    out = Path(__file__).parent / "results" / "audit.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
