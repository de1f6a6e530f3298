"""Throttles against guessing (passwords, invitation tokens) and rate limits on creations.

Guessing is throttled per account *and* per client address, with exponential backoff capped at a
few minutes: the first few failures cost nothing, then each further failure makes the next
attempt wait twice as long, up to ``cap``; a quiet spell of ``forget`` seconds starts the count
again, and a successful login resets its account's count. So an attacker who keeps failing can
slow an account down to one guess per ``cap``, but never locks its owner out for good: the owner
can always log in once the current wait is over. A refused attempt (429 with ``Retry-After``,
audited like every refusal) is not counted and costs no password hash.

The counters live in the ``throttles`` table, so every hub replica shares them (the prediction
quotas' reservations use the same rows through ``counter``). A failure is
recorded in its own transaction: the request that failed rolls back, its failure must not.
Stale rows (a day without events) are swept on each recorded failure.

>>> LOGIN_ACCOUNT.wait_after(4), LOGIN_ACCOUNT.wait_after(5), LOGIN_ACCOUNT.wait_after(6), LOGIN_ACCOUNT.wait_after(99)
(0.0, 30.0, 60.0, 300.0)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import QuotaExceeded, Unauthenticated, Unavailable
from consortium.store.db import transaction
from consortium.store.tables.base import utcnow
from consortium.store.tables.throttle import Throttle

SWEEP_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Backoff:
    """A guessing throttle: ``free`` failures, then waits of ``first_wait`` seconds doubling up to ``cap``."""

    name: str
    free: int
    first_wait: float
    cap: float
    forget: float  # seconds without a failure after which the count starts again
    reset_on_success: bool  # accounts: yes; addresses: no (a working login must not launder guesses)

    def wait_after(self, failures: int) -> float:
        """Seconds the next attempt waits after ``failures`` failures in a row."""
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.first_wait * 2 ** min(failures - self.free, 30)))


LOGIN_ACCOUNT = Backoff("login-account", free=5, first_wait=30, cap=300, forget=900, reset_on_success=True)
LOGIN_ADDRESS = Backoff("login-address", free=20, first_wait=30, cap=300, forget=900, reset_on_success=False)
ACCEPT_ADDRESS = Backoff("accept-address", free=10, first_wait=30, cap=300, forget=900, reset_on_success=False)


@dataclass(frozen=True)
class Quota:
    """A creation limit: at most ``limit`` in a window of ``window`` seconds from the first one."""

    name: str
    limit: int
    window: float


def account(email: str) -> str:
    """The subject of an account throttle: a hash of the normalised email (no address stored)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:40]


def _key(name: str, subject: str) -> str:
    return f"{name}:{subject}"[:120]


def _row(session: Session, key: str, now: datetime) -> Throttle:
    """The counter row, created if missing and locked for this transaction (PostgreSQL)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(Throttle).values(key=key, count=0, first_at=now, last_at=now)
                    .on_conflict_do_nothing(index_elements=["key"]))
    row = session.scalar(select(Throttle).where(Throttle.key == key).with_for_update()
                         .execution_options(populate_existing=True))
    if row is None:  # swept by another transaction between the insert and the read
        raise Unavailable("the rate counter changed while it was read", hint="try again")
    return row


def counter(session: Session, key: str) -> Throttle:
    """The shared counter ``key`` (created at 0 if missing), locked until the transaction ends:
    what every replica's quota reservations add to (``consortium.serving.hub.usage``)."""
    return _row(session, key[:120], utcnow())


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


@dataclass
class Attempt:
    """One guessable attempt under watch: refuses while a watched subject waits, records the outcome."""

    session: Session
    factory: sessionmaker[Session]
    watched: list[tuple[Backoff, str]] = field(default_factory=list)

    def watch(self, policy: Backoff, subject: str) -> None:
        """Refuse now (429) if ``subject`` is waiting under ``policy``; else count this attempt's outcome."""
        now = utcnow()
        row = self.session.get(Throttle, _key(policy.name, subject), populate_existing=True)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            wait = _retry_after(row.blocked_until, now)
            raise QuotaExceeded(f"too many failed attempts: wait {wait} seconds before trying again",
                                retry_after=wait, hint="the wait doubles with each further failure, "
                                                       "up to a few minutes")
        self.watched.append((policy, subject))

    def failed(self) -> None:
        """Count a failure against every watched subject, in a transaction of its own."""
        now = utcnow()
        with transaction(self.factory) as s:
            for policy, subject in self.watched:
                row = _row(s, _key(policy.name, subject), now)
                if row.count and (now - row.last_at).total_seconds() > policy.forget:
                    row.count, row.first_at = 0, now
                row.count += 1
                row.last_at = now
                wait = policy.wait_after(row.count)
                row.blocked_until = now + timedelta(seconds=wait) if wait else None
            s.execute(delete(Throttle).where(Throttle.last_at < now - SWEEP_AFTER))

    def succeeded(self) -> None:
        """A success resets the subjects whose policy says so (the account, not the address)."""
        keys = [_key(p.name, s) for p, s in self.watched if p.reset_on_success]
        if keys:
            self.session.execute(delete(Throttle).where(Throttle.key.in_(keys)))


@contextmanager
def attempt(session: Session, factory: sessionmaker[Session], *watched: tuple[Backoff, str]) -> Iterator[Attempt]:
    """Guard a guessable step: ``Unauthenticated`` inside counts as a failure, a normal exit as a
    success; more subjects can be watched inside (``a.watch(...)``) once they are known."""
    a = Attempt(session, factory)
    for policy, subject in watched:
        a.watch(policy, subject)
    try:
        yield a
    except Unauthenticated:
        a.failed()
        raise
    a.succeeded()


def take(session: Session, quota: Quota, subject: str, what: str) -> None:
    """Use one of ``subject``'s ``quota`` for ``what`` ("creating organizations"): 429 with
    ``Retry-After`` once used up. In the request's transaction, so a creation that fails gives its
    unit back."""
    now = utcnow()
    row = _row(session, _key(quota.name, subject), now)
    if (now - row.first_at).total_seconds() >= quota.window:
        row.count, row.first_at = 0, now
    if row.count >= quota.limit:
        wait = _retry_after(row.first_at + timedelta(seconds=quota.window), now)
        raise QuotaExceeded(f"{what}: at most {quota.limit} per {_span(quota.window)}; try again in "
                            f"{wait} seconds", retry_after=wait, hint="ask a hub operator if you need more")
    row.count += 1
    row.last_at = now


def _span(seconds: float) -> str:
    """``86400`` -> ``"day"``, ``3600`` -> ``"hour"``, else seconds."""
    return {86400: "day", 3600: "hour", 60: "minute"}.get(int(seconds), f"{int(seconds)} seconds")
