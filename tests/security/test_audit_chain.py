"""Security issue 15, finding 5: the audit chain is keyed with a secret outside the database, and
organizations keep signed checkpoints of its head (on SQLite and PostgreSQL).

Whoever can write the database edits an event and recomputes the plain SHA-256 chain and the head,
as the review did: verify must name the edited event. A tail cut after the last checkpoint an
organization holds is the documented limit; a cut or rewrite before it fails against the checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import delete, select, update

from consortium.errors import InvalidInput
from consortium.store.db import transaction
from consortium.store.tables.audit import AuditEvent, AuditHead

API = "/api/v1/audit"
COLS = [c.name for c in AuditEvent.__table__.columns]


def reviewer_hash(prev: str, ev: dict[str, Any]) -> str:
    """The plain SHA-256 link as the hub computed it before the fix (the review's recipe)."""
    body = "\x1f".join([prev, str(ev["seq"]), ev["time"].isoformat(timespec="microseconds"), ev["request_id"],
                        ev["actor_user_id"] or "", ev["actor_org_id"] or "", ev["action"],
                        ev["resource_type"] or "", ev["resource_id"] or "", ev["resource_org_id"] or "",
                        ev["project_id"] or "", ev["outcome"], ev["details"]])
    return hashlib.sha256(body.encode()).hexdigest()


def rows(s: Any, since: int = 0) -> list[dict[str, Any]]:
    evs = s.scalars(select(AuditEvent).where(AuditEvent.seq > since).order_by(AuditEvent.seq))
    return [{c: getattr(e, c) for c in COLS} for e in evs]


def rechain(s: Any, since: int, prev: str) -> str:
    """Recompute prev_hash/hash of every event after ``since`` and the head, with plain SHA-256."""
    for ev in rows(s, since):
        h = reviewer_hash(prev, ev)
        s.execute(update(AuditEvent).where(AuditEvent.seq == ev["seq"]).values(prev_hash=prev, hash=h))
        prev = h
    s.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    return prev


def verify(http: Any, actor: Any, checkpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    r = (http.post(f"{API}/verify", json={"checkpoints": checkpoints}, headers=actor.headers) if checkpoints
         else http.get(f"{API}/verify", headers=actor.headers))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture()
def restore(services: Any) -> Iterator[None]:
    """Put the module's chain back as it was after a test that tampered with it."""
    with services.session_factory() as s:
        saved = rows(s)
        head = s.get(AuditHead, 1)
        saved_head = {c.name: getattr(head, c.name) for c in AuditHead.__table__.columns}
    yield
    with transaction(services.session_factory) as s:  # events the test added go too: they no longer chain
        s.execute(delete(AuditEvent))
        s.add_all([AuditEvent(**ev) for ev in saved])
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(**saved_head))


def test_edited_event_with_recomputed_sha256_chain_is_caught(http: Any, world: Any, services: Any,
                                                             restore: None) -> None:
    a = world.actor(world.org())
    b = world.actor(world.org())
    for _ in range(6):
        http.get("/api/v1/me", headers=a.headers)
    assert verify(http, a)["ok"]
    with transaction(services.session_factory) as s:
        mine = [e for e in rows(s) if e["actor_org_id"] == a.org_id]
        target = mine[len(mine) // 2]["seq"]
        # the review: change the actor, recompute every hash from there on and the head
        s.execute(update(AuditEvent).where(AuditEvent.seq == target).values(actor_org_id=b.org_id))
        prev = s.get(AuditEvent, target - 1).hash
        rechain(s, target - 1, prev)
    r = verify(http, a)
    assert not r["ok"] and r["first_bad_seq"] == target and "altered" in r["problem"], r


def test_a_field_given_the_separator_is_named_as_altered(http: Any, world: Any, services: Any,
                                                         restore: None) -> None:
    """The database assembles the text each event's MAC covers: a field given the separator
    (shifting the fields after it) is the event named as altered."""
    a = world.actor(world.org())
    for _ in range(4):
        http.get("/api/v1/me", headers=a.headers)
    with transaction(services.session_factory) as s:
        mine = [e for e in rows(s) if e["actor_org_id"] == a.org_id]
        shifted = mine[2]["seq"]
        s.execute(update(AuditEvent).where(AuditEvent.seq == shifted).values(action=mine[2]["action"] + "\x1fx"))
    r = verify(http, a)
    assert not r["ok"] and r["first_bad_seq"] == shifted and "altered" in r["problem"], r


def test_chain_rewritten_as_if_from_before_the_upgrade_is_caught(http: Any, world: Any, services: Any,
                                                                 restore: None) -> None:
    """Removing the seal and restarting the hub does not make it seal a rewritten chain."""
    a = world.actor(world.org())
    http.get("/api/v1/me", headers=a.headers)
    with transaction(services.session_factory) as s:
        rechain(s, 0, "0" * 64)
        n = s.get(AuditHead, 1).seq
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(keyed_from=None, seal=None, sealed_at=None,
                                                                    key_id=None))
    with transaction(services.session_factory) as s:
        services.audit_chain.ensure_head(s)  # what the next start does
    r = verify(http, a)
    assert not r["ok"] and "seal" in r["problem"] and r["legacy_events"] == 0, r
    with transaction(services.session_factory) as s:  # claim every event predates the keyed chain
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(
            keyed_from=n + 1, seal="0" * 64, key_id=services.audit_chain.keys.key_id,
            sealed_at=s.get(AuditEvent, 1).time))
    r = verify(http, a)
    assert not r["ok"] and "seal" in r["problem"], r


def test_tail_cut_before_a_held_checkpoint_fails_against_it(http: Any, world: Any, services: Any,
                                                            restore: None) -> None:
    a = world.actor(world.org())
    for _ in range(4):
        http.get("/api/v1/me", headers=a.headers)
    cp = http.get(f"{API}/checkpoint", headers=a.headers).json()
    assert cp["algorithm"] == "Ed25519" and len(cp["hash"]) == 64
    for _ in range(3):
        http.get("/api/v1/me", headers=a.headers)
    r = verify(http, a, [cp])
    assert r["ok"] and r["checkpoints"][0]["ok"], r
    keep = cp["seq"] - 2
    with transaction(services.session_factory) as s:  # cut the tail, and the head with it
        s.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
        s.execute(update(AuditHead).where(AuditHead.id == 1)
                  .values(seq=keep, last_hash=s.get(AuditEvent, keep).hash))
    assert verify(http, a)["ok"]  # without a checkpoint a clean cut is invisible: the documented limit
    r = verify(http, a, [cp])
    # (each request appends an event, so the chain has grown by one since the cut)
    assert not r["ok"] and r["first_bad_seq"] == r["events"] + 1 <= cp["seq"] and "deleted" in r["problem"], r
    assert not r["checkpoints"][0]["ok"]


def test_rewrite_with_the_key_before_a_held_checkpoint_fails_against_it(http: Any, world: Any, services: Any,
                                                                        restore: None) -> None:
    """Even the hub's own key cannot rewrite what a checkpoint vouches for."""
    a = world.actor(world.org())
    for _ in range(3):
        http.get("/api/v1/me", headers=a.headers)
    cp = http.get(f"{API}/checkpoint", headers=a.headers).json()
    chain = services.audit_chain
    with transaction(services.session_factory) as s:
        target = cp["seq"] - 1
        s.execute(delete(AuditEvent).where(AuditEvent.seq >= target))
        prev = s.get(AuditEvent, target - 1).hash
        s.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=target - 1, last_hash=prev))
        from consortium.governance.audit import EventDraft

        chain.append(s, [EventDraft("me", actor_org_id=a.org_id), EventDraft("me", actor_org_id=a.org_id)])
    r = verify(http, a)
    assert r["ok"], r  # a consistent chain under the right key...
    r = verify(http, a, [cp])
    assert not r["ok"] and "rewritten" in r["problem"], r  # ...that no longer matches the checkpoint


def test_forged_checkpoints_are_rejected(http: Any, world: Any, live_url: str) -> None:
    from consortium.sdk.client import Client

    a = world.actor(world.org())
    cp = http.get(f"{API}/checkpoint", headers=a.headers).json()
    pub = http.get(f"{API}/public-key", headers=a.headers).json()
    assert pub["public_key"] == cp["public_key"] and pub["key_id"] == cp["key_id"]
    edited = {**cp, "seq": cp["seq"] + 5}
    r = http.post(f"{API}/verify", json={"checkpoints": [edited]}, headers=a.headers)
    assert r.status_code == 422 and "signature does not verify" in r.json()["error"]["message"], r.text
    # signed by someone else's key, that key named in the checkpoint
    other = Ed25519PrivateKey.generate()
    from consortium.governance.audit_keys import checkpoint_message

    sig = other.sign(checkpoint_message(cp["key_id"], cp["seq"], cp["hash"], cp["time"]))
    other_pub = base64.b64encode(other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    forged = {**cp, "signature": base64.b64encode(sig).decode(), "public_key": other_pub}
    r = http.post(f"{API}/verify", json={"checkpoints": [forged]}, headers=a.headers)
    assert r.status_code == 422, r.text
    # offline, in the SDK: the holder's pinned key refuses it, the real one passes
    c = Client(live_url, a.token)
    c.audit.check_checkpoint(cp, pub["public_key"])
    with pytest.raises(InvalidInput):
        c.audit.check_checkpoint(forged, pub["public_key"])
    with pytest.raises(InvalidInput):
        c.audit.verify([edited])
    assert c.audit.verify([cp])["checkpoints"][0]["ok"]


def test_master_key_rotation_keeps_verify_and_checkpoints(http: Any, world: Any, services: Any) -> None:
    from consortium.governance import audit_verify
    from consortium.governance.audit import AuditChain
    from consortium.governance.audit_keys import AuditKeys
    from consortium.governance.keys import Keyring

    a = world.actor(world.org())
    cp = http.get(f"{API}/checkpoint", headers=a.headers).json()
    before = services.audit_chain.keys.key_id
    with services.session_factory() as s:
        rotated = services.keys.rotate(s)
    assert rotated["active_master_key"] != rotated["previous_master_key"]
    ring = Keyring.load(services.settings.home)  # what the next start reads: only the new master key
    assert list(ring.keys) == [rotated["active_master_key"]]
    home = services.settings.home  # the audit chain as the next start builds it (``Services.start``)
    again = AuditChain(AuditKeys.from_root(ring.audit_root), home / "audit-seal.json")
    assert again.keys.key_id == before and again.keys.public_key == cp["public_key"]
    http.get("/api/v1/me", headers=a.headers)
    r = verify(http, a, [cp])
    assert r["ok"] and r["key_id"] == before and r["checkpoints"][0]["ok"], r
    with services.session_factory() as s:
        assert audit_verify.verify(s, again, [cp]).ok


def _legacy_hub(backend: str, tmp: Path) -> tuple[Any, Any]:
    """A database at the foundation's first revision, holding events in the old SHA-256 format."""
    from alembic import command

    from consortium.config import Settings
    from consortium.store.db import alembic_config, make_engine

    drop = None
    if backend == "postgres":
        from support import pg_database

        url, drop = pg_database()
    else:
        url = f"sqlite:///{tmp / 'legacy.db'}"
    engine = make_engine(url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_foundation")
    events = AuditEvent.__table__  # unchanged since the first revision; audit_head gained columns
    head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("last_hash"))
    from consortium.store.tables.base import utcnow

    prev, rows_ = "0" * 64, []
    for i in range(1, 51):
        ev = {"seq": i, "time": utcnow(),
              "request_id": f"r{i}", "actor_user_id": None, "actor_org_id": "org_old", "action": "me",
              "resource_type": None, "resource_id": None, "resource_org_id": None, "project_id": None,
              "outcome": "ok", "details": json.dumps({"i": i})}
        ev["hash"] = reviewer_hash(prev, ev)
        ev["prev_hash"], prev = prev, ev["hash"]
        rows_.append(ev)
    with engine.begin() as conn:
        conn.execute(sa.insert(events), rows_)
        conn.execute(sa.insert(head).values(id=1, seq=50, last_hash=prev))
    engine.dispose()
    return Settings(home=tmp / "home", database_url=url), drop


def test_upgrade_seals_an_old_chain_and_keys_new_events(backend: str, tmp_path: Path) -> None:
    from consortium.governance import audit_verify
    from consortium.governance.audit import EventDraft
    from consortium.services import Services

    settings, drop = _legacy_hub(backend, tmp_path)
    svc = Services.start(settings)  # migrates and seals the 50 old events
    try:
        with transaction(svc.session_factory) as s:
            svc.audit_chain.append(s, [EventDraft("me", actor_org_id="org_new") for _ in range(5)])
        with svc.session_factory() as s:
            r = audit_verify.verify(s, svc.audit_chain)
        assert r.ok and r.events == 55 and r.legacy_events == 50 and r.sealed_at is not None, r
        with transaction(svc.session_factory) as s:  # the review's rewrite, inside the old events
            s.execute(update(AuditEvent).where(AuditEvent.seq == 20).values(actor_org_id="org_x"))
            rechain(s, 19, s.get(AuditEvent, 19).hash)
        with svc.session_factory() as s:
            r = audit_verify.verify(s, svc.audit_chain)
        assert not r.ok and r.first_bad_seq == 50 and "seal over them no longer matches" in (r.problem or ""), r
    finally:
        svc.close()
        if drop:
            drop()


def test_cli_checkpoint_and_verify(live_url: str, world: Any, tmp_path: Path) -> None:
    a = world.actor(world.org())
    exe = Path(sys.executable).parent / "consortium"
    env = {**os.environ, "CONSORTIUM_URL": live_url, "CONSORTIUM_TOKEN": a.token, "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), "audit", *args], env=env, capture_output=True, text=True, timeout=120,
                              check=False)

    key = run("public-key")
    assert key.returncode == 0 and "Ed25519" in key.stdout, key.stderr
    f = tmp_path / "cp.json"
    out = run("checkpoint", "--out", str(f))
    assert out.returncode == 0 and "public key" in out.stdout, out.stderr
    cp = json.loads(f.read_text())
    ok = run("verify", "--checkpoint", str(f), "--public-key", cp["public_key"])
    assert ok.returncode == 0 and "intact" in ok.stdout and "matches" in ok.stdout, ok.stdout + ok.stderr
    offline = run("verify", "--offline", "--checkpoint", str(f), "--public-key", cp["public_key"])
    assert offline.returncode == 0 and "signed by audit key" in offline.stdout, offline.stderr
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps({**cp, "hash": "f" * 64}))
    for extra in ([], ["--offline"]):
        no = run("verify", *extra, "--checkpoint", str(bad))
        assert no.returncode == 1 and "signature does not verify" in no.stderr, no.stdout + no.stderr
