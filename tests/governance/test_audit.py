"""The audit chain: events for every access, and tampering caught by verify (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from consortium.store.db import transaction
from consortium.store.tables.audit import AuditEvent


def test_every_request_is_audited_with_its_outcome(http: Any, world: Any) -> None:
    a = world.actor(world.org())
    b = world.actor(world.org())
    http.get("/api/v1/me", headers=a.headers)
    http.post("/api/v1/tokens", json={"name": "x" * 100}, headers=a.headers)  # 422
    tok = http.post("/api/v1/tokens", json={"name": "ci"}, headers=a.headers).json()
    assert http.delete(f"/api/v1/tokens/{tok['id']}", headers=b.headers).status_code == 404
    events = http.get("/api/v1/audit", params={"limit": 50}, headers=a.headers).json()["items"]
    actions = [(e["action"], e["outcome"]) for e in events]
    assert ("me", "ok") in actions
    assert ("create_token", "invalid_input") in actions
    assert ("create_token", "ok") in actions
    # b's failed attempt on a's token concerns a (a owns the resource)
    denied = [e for e in events if e["action"] == "revoke_token" and e["outcome"] == "not_found"]
    assert denied and denied[0]["actor_org_id"] == b.org_id and denied[0]["resource_org_id"] == a.org_id
    first = events[-1]
    assert {"actor_user_id", "actor_org_id", "time", "request_id", "resource_type", "hash"} <= set(first)
    # b does not see a's own events
    b_events = http.get("/api/v1/audit", params={"limit": 200}, headers=b.headers).json()["items"]
    assert all(e["actor_org_id"] == b.org_id or e["resource_org_id"] == b.org_id for e in b_events)


def _verify(http: Any, actor: Any) -> dict[str, Any]:
    r = http.get("/api/v1/audit/verify", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_verify_catches_alteration_deletion_and_reordering(http: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    for _ in range(5):
        http.get("/api/v1/me", headers=a.headers)
    ok = _verify(http, a)
    assert ok["ok"] and ok["events"] >= 5
    f = services.session_factory
    with transaction(f) as s:
        seqs = list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
        target = seqs[len(seqs) // 2]
        original = s.get(AuditEvent, target)
        saved = (original.outcome, original.actor_org_id)
        original.outcome = "ok" if original.outcome != "ok" else "not_found"  # altered
    r = _verify(http, a)
    assert not r["ok"] and r["first_bad_seq"] == target and "altered" in r["problem"]
    with transaction(f) as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == target).values(outcome=saved[0]))
    assert _verify(http, a)["ok"]

    # deleted
    with transaction(f) as s:
        row = s.get(AuditEvent, target)
        backup = {c.name: getattr(row, c.name) for c in AuditEvent.__table__.columns}
        s.execute(delete(AuditEvent).where(AuditEvent.seq == target))
    r = _verify(http, a)
    assert not r["ok"] and r["first_bad_seq"] == target and "missing" in r["problem"]
    with transaction(f) as s:
        s.add(AuditEvent(**backup))
    assert _verify(http, a)["ok"]

    # reordered: swap the content of two neighbours (each keeps a self-consistent hash)
    with transaction(f) as s:
        x, y = s.get(AuditEvent, target), s.get(AuditEvent, target + 1)
        cols = [c.name for c in AuditEvent.__table__.columns if c.name != "seq"]
        vx, vy = {c: getattr(x, c) for c in cols}, {c: getattr(y, c) for c in cols}
        for c in cols:
            setattr(x, c, vy[c])
            setattr(y, c, vx[c])
    r = _verify(http, a)
    assert not r["ok"] and r["first_bad_seq"] == target
    with transaction(f) as s:
        x, y = s.get(AuditEvent, target), s.get(AuditEvent, target + 1)
        for c in cols:
            setattr(x, c, vx[c])
            setattr(y, c, vy[c])
    assert _verify(http, a)["ok"]


def test_tail_truncation_is_caught(http: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    with transaction(services.session_factory) as s:
        last = s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert _verify(http, a)["ok"]
    with transaction(services.session_factory) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq == last))
    r = _verify(http, a)
    assert not r["ok"] and "deleted" in r["problem"]
