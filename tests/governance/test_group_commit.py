"""The audit group commit (``audit.GroupCommit``) and the request's unit of work: an answered
access is on the durable chain, many concurrent events share few commits, and a request that
changed something commits its change even when a savepoint came after it (SQLAlchemy reports a
savepoint's release as a commit: counting it as the request's end lost a replaced feedback report)."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from consortium.governance import audit
from consortium.governance.audit import EventDraft, wrote
from consortium.governance.audit_verify import verify
from consortium.store.tables.audit import AuditEvent


def _count(svc: Any, action: str) -> int:
    with svc.session_factory() as s:
        return int(s.scalar(sa.select(sa.func.count()).where(AuditEvent.action == action)) or 0)


def test_a_change_before_a_savepoint_still_counts_as_written(services: Any, world: Any) -> None:
    from consortium.governance import identity

    with services.session_factory() as s:
        org = identity.org_by_name(s, world.org())
        org.display_name = "Renamed Before A Savepoint"
        s.flush()
        with s.begin_nested():  # e.g. the feedback route's retraining check
            pass
        assert wrote(s), "a released savepoint must not hide the request's earlier change"
        sp = s.begin_nested()
        sp.rollback()  # a savepoint given up (e.g. a lost insert race) does not undo the flag either
        assert wrote(s)
        s.commit()
        assert not wrote(s)  # the outermost commit ends it
    with services.session_factory() as s:
        assert identity.org_by_name(s, org.name).display_name == "Renamed Before A Savepoint"


def test_concurrent_events_share_commits_and_the_chain_verifies(services: Any) -> None:
    group = audit.GroupCommit(services.session_factory, services.audit_chain)
    barrier = threading.Barrier(32)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            group.submit([EventDraft(action="test.group", details={"i": i})])
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    before = _count(services, "test.group")
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert _count(services, "test.group") - before == 32  # each submit returned after its commit
    assert group.events == 32 and group.batches < 32  # shared transactions
    with services.session_factory() as s:
        assert verify(s, services.audit_chain).ok
