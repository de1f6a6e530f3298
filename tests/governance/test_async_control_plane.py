"""The event-loop side of the control plane (issue 22): a read's audit event is waited for on the
loop (``GroupCommit.submit_async``) and is committed when the wait ends, a failed batch reaches
its waiter; a cached principal answers on the loop only while the cache may answer alone
(``credentials.cached_principal``), so a revocation seen by the revision poll is never skipped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from consortium.governance import audit, control_cache, credentials
from consortium.governance.audit import EventDraft
from consortium.store.tables.audit import AuditEvent


def _count(svc: Any, action: str) -> int:
    with svc.session_factory() as s:
        return int(s.scalar(sa.select(sa.func.count()).where(AuditEvent.action == action)) or 0)


def test_an_async_wait_ends_only_once_its_events_are_committed(services: Any) -> None:
    group = audit.GroupCommit(services.session_factory, services.audit_chain)

    async def many() -> list[int]:
        async def one(i: int) -> int:
            await group.submit_async([EventDraft("test.async_group", details={"i": i})])
            return _count(services, "test.async_group")  # read at once after the wait: already there

        return await asyncio.gather(*(one(i) for i in range(20)))

    seen = asyncio.run(many())
    assert all(n >= 1 for n in seen) and _count(services, "test.async_group") == 20
    assert group.batches <= 20


def test_an_async_wait_raises_the_batchs_error(services: Any) -> None:
    from sqlalchemy.orm import sessionmaker

    empty = sessionmaker(sa.create_engine("sqlite://"))  # a database without the audit tables
    group = audit.GroupCommit(empty, services.audit_chain)
    with pytest.raises(sa.exc.OperationalError):
        asyncio.run(group.submit_async([EventDraft("test.async_bad")]))


def test_a_cached_principal_answers_only_within_the_poll(world: Any, services: Any) -> None:
    a = world.actor(world.org(), "owner")
    cache = control_cache.of(services.session_factory())
    assert cache is not None
    with services.session_factory() as s:
        p = credentials.resolve_token(s, a.token)  # fills the cache (and records the token's use)
        s.commit()
    with services.session_factory() as s:
        credentials.resolve_token(s, a.token)
        s.rollback()
    hit = credentials.cached_principal(cache, "token", a.token)
    assert hit == p
    assert credentials.cached_principal(cache, "token", a.token + "x") is None  # another secret: no entry
    cache._checked = time.monotonic() - cache.poll_s  # the revision is due to be read again
    assert credentials.cached_principal(cache, "token", a.token) is None
