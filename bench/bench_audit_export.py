"""The sealed audit export (issue 19) against paging the same events as ``GET /audit`` does,
measured in the same run on one SQLite hub: one organization's N events written as JSON Lines and
as syslog, checked offline (``export_seal.verify_export``), and, for scale, the hub's own walk of
the whole chain (``audit_verify.verify``). Rounds alternate; medians, since the host is shared.

Run: ``PYTHONPATH=src python bench/bench_audit_export.py --events 50000`` (writes
``bench/results/audit_export.md``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from consortium.config import Settings
    from consortium.governance import audit, audit_export, audit_verify, identity
    from consortium.governance.audit import EventDraft
    from consortium.governance.export_seal import verify_export
    from consortium.services import Services
    from consortium.store.db import transaction

    svc = Services.start(Settings(home=tempfile.mkdtemp(prefix="bench-export-")))
    with transaction(svc.session_factory) as s:
        oid = identity.create_org(s, svc.keys, "bench-org", "Bench").id
    with transaction(svc.session_factory) as s:
        svc.audit_in(s, [EventDraft("bench.event", actor_org_id=oid, resource_type="dataset",
                                    resource_id=f"ds_{i % 50}", resource_org_id=oid, details={"i": i})
                         for i in range(args.events)])
    with svc.session_factory() as s:
        org = identity.org_by_id(s, oid)
        s.expunge(org)
    key = svc.audit_chain.keys.public_key
    lines: dict[str, list[str]] = {}

    def paged() -> None:  # the baseline: GET /audit's pages (ORM events, 1000 a page), no HTTP
        after = None
        listing = audit.events_for_org(oid)
        while True:
            with svc.session_factory() as s:
                page = listing.page(s, after, 1000)
                _ = [(e.seq, e.hash, e.details) for e in page.items]
            if page.after is None:
                return
            after = page.after

    def export(fmt: str) -> Callable[[], None]:
        def run() -> None:
            lines[fmt] = [x for chunk in audit_export.export_lines(svc.session_factory, svc.audit_chain, org, fmt)
                          for x in chunk.splitlines()]
        return run

    def check(fmt: str) -> Callable[[], None]:
        return lambda: verify_export(lines[fmt], key) and None

    def walk() -> None:
        with svc.session_factory() as s:
            assert audit_verify.verify(s, svc.audit_chain).ok

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("GET /audit pages, 1000 a page (baseline)", paged), ("export JSON Lines", export("jsonl")),
        ("export syslog (RFC 5424)", export("syslog")), ("verify-export JSON Lines (offline)", check("jsonl")),
        ("verify-export syslog (offline)", check("syslog")), ("hub's chain walk (audit verify)", walk)]
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(args.rounds):
        for name, fn in cases:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    n = args.events
    med = {name: statistics.median(ts) for name, ts in times.items()}
    rows = [f"| {name} | {t:.2f} | {n / t:,.0f} |" for name, t in med.items()]
    size = sum(len(x) + 1 for x in lines["jsonl"])
    text = "\n".join([
        "# Audit export (issue 19)", "",
        f"{n:,} events of one organization on SQLite, medians of {args.rounds} alternating rounds, one process; "
        f"the JSON Lines file is {size / 1e6:.1f} MB. Host shared with other agents: compare rows, not runs.", "",
        "| what | seconds | events/s |", "| --- | --- | --- |", *rows, ""])
    out = ROOT / "bench" / "results" / "audit_export.md"
    out.write_text(text)
    print(text)
    svc.close()


if __name__ == "__main__":
    main()
