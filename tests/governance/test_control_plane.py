"""The fast control plane keeps its guarantees (issue 22): group-committed audit events are durable
when acknowledged and the chain stays whole under concurrency and a kill mid-stream; cached
credentials and grants are refused on every hub on the same database within 2 s of a revocation
on one of them. On SQLite and, when configured, PostgreSQL (the module's ``settings`` fixture)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from consortium.errors import Conflict, NotFound, Unauthenticated
from consortium.governance import audit_verify, credentials, grants
from consortium.governance.audit import EventDraft
from consortium.governance.roles import Permission, Role
from consortium.store.db import transaction
from consortium.store.tables.audit import AuditEvent, AuditOutbox

REFUSED_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def replica(services: Any) -> Any:
    """A second hub process's services on the same database (its own caches, pool and writer)."""
    from consortium.services import Services

    other = Services.start(services.settings)
    yield other
    other.close()


def _verify(svc: Any) -> Any:
    with svc.session_factory() as s:
        return audit_verify.verify(s, svc.audit_chain)


def _resolve(svc: Any, token: str) -> Any:
    with svc.session_factory() as s:
        return credentials.resolve_token(s, token)


def test_concurrent_reads_share_commits_and_the_chain_stays_whole(services: Any) -> None:
    group = services.audit_group
    before_batches, before_events = group.batches, group.events
    ids = [f"gc-{os.getpid()}-{i}" for i in range(200)]
    errors: list[BaseException] = []

    def one(chunk: list[str]) -> None:
        try:
            for rid in chunk:
                services.audit_now([EventDraft("test.read", request_id=rid)])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(ids[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with services.session_factory() as s:
        stored = set(s.scalars(select(AuditEvent.request_id).where(AuditEvent.request_id.in_(ids))))
        seqs = list(s.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
    assert stored == set(ids)  # every acknowledged event is committed
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no fork
    assert group.events - before_events == 200
    assert group.batches - before_batches < 200  # several requests shared a commit
    assert _verify(services).ok


def test_a_change_commits_with_its_event_and_a_read_waits_for_its_group(http: Any, world: Any,
                                                                        services: Any) -> None:
    a = world.actor(world.org())
    r = http.get("/api/v1/me", headers=a.headers)
    rid = r.headers["x-request-id"]
    with services.session_factory() as s:  # answered, so already committed
        assert s.scalar(select(func.count()).where(AuditEvent.request_id == rid)) == 1
    r = http.post("/api/v1/tokens", json={"name": "cp"}, headers=a.headers)
    assert r.status_code == 201
    with services.session_factory() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.request_id == r.headers["x-request-id"])).one()
    assert ev.outcome == "ok"


def test_a_revoked_token_is_refused_by_the_other_replica_within_2s(world: Any, services: Any,
                                                                   replica: Any) -> None:
    a = world.actor(world.org())
    assert _resolve(replica, a.token).user_id == a.user_id  # cached on the replica now
    assert _resolve(replica, a.token).user_id == a.user_id
    p = _resolve(services, a.token)
    with transaction(services.session_factory) as s:
        credentials.revoke_token(s, p, p.via.split(":", 1)[1])
    with pytest.raises(Unauthenticated):  # the revoking process: at once
        _resolve(services, a.token)
    t0 = time.monotonic()
    while True:
        try:
            _resolve(replica, a.token)
        except Unauthenticated:
            break
        assert time.monotonic() - t0 < REFUSED_WITHIN_S, "the other replica still accepts the revoked token"
        time.sleep(0.05)


def test_an_ended_session_is_refused_by_the_other_replica_within_2s(world: Any, services: Any,
                                                                    replica: Any) -> None:
    a = world.actor(world.org())
    with transaction(services.session_factory) as s:
        from consortium.store.tables.identity import User

        _, secret = credentials.create_session(s, s.get(User, a.user_id), 1)

    def resolve(svc: Any) -> Any:
        with svc.session_factory() as s:
            return credentials.resolve_session(s, secret)

    assert resolve(replica).org_id == a.org_id
    with transaction(services.session_factory) as s:
        credentials.end_session(s, secret)
    t0 = time.monotonic()
    while True:
        try:
            resolve(replica)
        except Unauthenticated:
            break
        assert time.monotonic() - t0 < REFUSED_WITHIN_S, "the other replica still accepts the ended session"
        time.sleep(0.05)


def test_a_revoked_grant_is_refused_by_the_other_replica_within_2s(world: Any, services: Any,
                                                                   replica: Any) -> None:
    from consortium.data.resources import DATASET
    from consortium.governance import identity
    from consortium.store.tables.base import new_id
    from consortium.store.tables.data import Dataset

    owner, grantee = world.actor(world.org()), world.actor(world.org())
    p = _resolve(services, owner.token)  # outside the transaction: SQLite has one writer
    with transaction(services.session_factory) as s:
        ds = Dataset(id=new_id("ds"), org_id=owner.org_id, name=f"cp-{owner.org}", description="")
        s.add(ds)
        s.flush()
        g = grants.create_grant(s, p, DATASET, ds.name, "metadata",
                                grantee_org=identity.org_by_id(s, grantee.org_id).name)
        ds_id, grant_id = ds.id, g.id

    def check(svc: Any) -> Any:
        with svc.session_factory() as s:
            return grants.authorize(s, _resolve(svc, grantee.token), "dataset", ds_id, owner.org_id,
                                    Permission.metadata)

    assert check(replica).id == grant_id  # the replica has the received grants cached
    with transaction(services.session_factory) as s:
        grants.revoke_grant(s, p, grant_id)
    with pytest.raises(NotFound):
        check(services)
    t0 = time.monotonic()
    while True:
        try:
            check(replica)
        except NotFound:
            break
        assert time.monotonic() - t0 < REFUSED_WITHIN_S, "the other replica still honours the revoked grant"
        time.sleep(0.05)


def test_a_lowered_role_holds_at_once_in_the_process_that_changed_it(world: Any, services: Any) -> None:
    from consortium.governance import identity

    org = world.org()
    boss, m = world.actor(org), world.actor(org, "admin")
    assert _resolve(services, m.token).role == Role.admin
    p = _resolve(services, boss.token)
    with transaction(services.session_factory) as s:
        identity.change_role(s, p, m.user_id, Role.viewer)
    assert _resolve(services, m.token).role == Role.viewer


CRASH_WRITER = textwrap.dedent("""
    import sys, threading
    from consortium.config import Settings
    from consortium.hub import Hub
    from consortium.governance.audit import EventDraft
    hub = Hub.start(Settings(home=sys.argv[1], database_url=sys.argv[2]))
    lock = threading.Lock()
    def pump(k):
        for i in range(10**6):
            rid = f"crash-{k}-{i}"
            hub.audit_now([EventDraft("test.crash", request_id=rid, details={"i": i})])
            with lock:
                print(rid, flush=True)  # acknowledged: committed
    for k in range(8):
        threading.Thread(target=pump, args=(k,), daemon=True).start()
    threading.Event().wait()
""")


def test_a_kill_mid_stream_loses_nothing_acknowledged_and_leaves_the_chain_whole(services: Any) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(services.settings.home),
                             services.settings.database_url], stdout=subprocess.PIPE, text=True, env=env)
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(line.strip())
            if len(acked) >= 300:
                break
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: batches are being written
        rest, _ = proc.communicate(timeout=30)
    acked += [x for x in rest.split() if x]
    assert len(acked) >= 300
    with services.session_factory() as s:
        stored = set(s.scalars(select(AuditEvent.request_id).where(AuditEvent.action == "test.crash")))
    assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged events were lost"
    res = _verify(services)
    assert res.ok, res.problem
    # a fresh process goes on appending on the same chain
    services.audit_now([EventDraft("test.after-crash", details={"n": json.dumps(len(acked))})])
    assert _verify(services).ok


def test_a_change_stages_its_event_without_the_head_and_a_crash_leaves_it_for_the_next_batch(
        http: Any, world: Any, services: Any, replica: Any) -> None:
    a = world.actor(world.org())
    r = http.post("/api/v1/tokens", json={"name": "staged"}, headers=a.headers)
    assert r.status_code == 201
    with services.session_factory() as s:  # answered: on the chain, nothing left staged
        assert s.scalar(select(func.count()).select_from(AuditOutbox)) == 0
        assert s.scalar(select(func.count()).where(AuditEvent.request_id == r.headers["x-request-id"])) == 1
    # a change committed with its staged event, then the process died before a batch chained it
    with transaction(services.session_factory) as s:
        services.audit_staged(s, [EventDraft("test.staged-then-crash", request_id="staged-1")])
    with services.session_factory() as s:
        assert s.scalar(select(func.count()).where(AuditEvent.request_id == "staged-1")) == 0
    replica.audit_now([EventDraft("test.other-replica")])  # any process's next batch takes it
    with services.session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditOutbox)) == 0
        ev = s.scalars(select(AuditEvent).where(AuditEvent.request_id == "staged-1")).one()
        after = s.scalars(select(AuditEvent).where(AuditEvent.action == "test.other-replica")).one()
    assert ev.seq < after.seq
    assert _verify(services).ok


def test_the_same_token_name_at_once_is_one_token_and_a_conflict_not_an_error(world: Any, services: Any) -> None:
    a = world.actor(world.org())
    p = _resolve(services, a.token)
    flushed, outcomes = threading.Event(), []

    def first() -> None:
        with transaction(services.session_factory) as s:
            credentials.create_token(s, p, "race", Role.viewer, 1)
            flushed.set()
            time.sleep(0.3)  # holds its uncommitted row while the second checks and inserts
        outcomes.append("created")

    t = threading.Thread(target=first)
    t.start()
    assert flushed.wait(10)
    try:
        with transaction(services.session_factory) as s:  # its check sees no committed "race"
            credentials.create_token(s, p, "race", Role.viewer, 1)
        outcomes.append("created")
    except Conflict as e:
        outcomes.append("conflict")
        assert "race" in e.message
    t.join(10)
    assert sorted(outcomes) == ["conflict", "created"]


def test_a_new_credential_keeps_the_caches_and_a_use_is_written_by_the_next_batch(
        world: Any, services: Any) -> None:
    from consortium.governance import control_cache
    from consortium.store.tables.identity import ApiToken, User

    a = world.actor(world.org())
    cache = control_cache.of(services.session_factory())
    assert cache is not None
    p = _resolve(services, a.token)
    drops = cache.drops
    with transaction(services.session_factory) as s:
        tok, secret = credentials.create_token(s, p, "fresh", Role.viewer, 1)
        credentials.create_session(s, s.get(User, a.user_id), 1)
    assert cache.drops == drops, "creating a token or a session dropped every cached principal"
    _resolve(services, secret)  # its first use: noted, not written in the request's transaction
    with services.session_factory() as s:
        assert s.get(ApiToken, tok.id).last_used_at is None
    services.audit_now([EventDraft("test.batch")])
    with services.session_factory() as s:
        assert s.get(ApiToken, tok.id).last_used_at is not None
    with transaction(services.session_factory) as s:
        credentials.revoke_token(s, p, tok.id)
    assert cache.drops == drops + 1  # a revocation still drops them
