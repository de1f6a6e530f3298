"""Usage accounting and quotas for deployments: calls per calling organization per minute.

Every call is counted in memory (a lock and a dict update, about a microsecond) and flushed to
the ``deployment_usage`` table once a second by a background thread, one upsert per
(deployment, caller organization, minute). Quotas (``per_minute``/``per_day`` from the grant)
are checked against what the database holds for the window, read when the caller's access is
(re)loaded (at most once a second per deployment and caller), plus what this process counted
since. Counts therefore hold across requests, restarts and hub replicas; with several
replicas a caller can overshoot by at most what the other replicas served in the last second.
Per-request database writes were the alternative: they cost a transaction per prediction.

Audit rule (home-made): predictions are not written to the hash chain one by one, which would
dominate the cost of a prediction. When a minute closes, each (deployment, caller org, minute)
aggregate this process saw is appended as one ``deployment.usage`` event (count, errors,
rejected, latency); every denied call (no credential, no grant) is audited as it happens, and
the first over-quota refusal per caller per minute too (the rest are counted in the aggregate).

>>> m = UsageMeter(None, interval=0)
>>> m.admit("dep_1", "org_owner", "org_b", {"per_minute": 1})
>>> m.admit("dep_1", "org_owner", "org_b", {"per_minute": 1})
Traceback (most recent call last):
...
consortium.errors.QuotaExceeded: quota exceeded: 1 calls per minute (wait, or ask ... for a higher quota)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import QuotaExceeded
from consortium.governance.audit import EventDraft
from consortium.store.tables.base import utcnow
from consortium.store.tables.registry import DeploymentUsage

log = logging.getLogger("consortium.usage")
Key = tuple[str, str, str, int]  # deployment id, owner org id, caller org id, minute (epoch // 60)


@dataclass
class Bucket:
    count: int = 0
    errors: int = 0
    rejected: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    def add(self, other: Bucket) -> None:
        self.count += other.count
        self.errors += other.errors
        self.rejected += other.rejected
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_max_ms = max(self.latency_max_ms, other.latency_max_ms)


@dataclass
class _Base:
    minute: int
    minute_count: int
    day: int
    day_count: int


class UsageMeter:
    """Counts calls per (deployment, caller org, minute); enforces quotas; flushes to the database.

    ``factory`` is the session factory (None: count in memory only, for tests and docs).
    ``audit(session, drafts)`` appends audit events in the flush transaction.
    """

    def __init__(self, factory: sessionmaker[Session] | None, *, interval: float = 1.0,
                 audit: Callable[[Session, list[EventDraft]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._factory = factory
        self.interval = interval
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[Key, Bucket] = {}
        self._inflight: dict[Key, Bucket] = {}
        self._minute_totals: dict[Key, Bucket] = {}  # this process's totals of open minutes (audit)
        self._base: dict[tuple[str, str], _Base] = {}
        self._rejection_audited: set[tuple[str, str, int]] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.flushes = 0
        self.flush_seconds = 0.0

    # ------------------------------------------------------------------------ hot path
    def admit(self, dep_id: str, owner_org_id: str, org_id: str, limits: dict[str, Any] | None) -> None:
        """Count one call, or raise ``QuotaExceeded`` (counted as rejected) if over a limit."""
        now = self._clock()
        minute = int(now // 60)
        key = (dep_id, owner_org_id, org_id, minute)
        with self._lock:
            b = self._pending.get(key)
            if b is None:
                b = self._pending[key] = Bucket()
            if limits:
                per_minute, per_day = limits.get("per_minute"), limits.get("per_day")
                used_minute, used_day = self._used(dep_id, org_id, minute)
                if per_minute is not None and used_minute >= per_minute:
                    b.rejected += 1
                    raise QuotaExceeded(f"quota exceeded: {per_minute} calls per minute",
                                        retry_after=max(1, math.ceil(60 - now % 60)),
                                        hint="wait, or ask the deployment's owner for a higher quota")
                if per_day is not None and used_day >= per_day:
                    b.rejected += 1
                    raise QuotaExceeded(f"quota exceeded: {per_day} calls per day",
                                        retry_after=max(1, math.ceil(86400 - now % 86400)),
                                        hint="wait until midnight UTC, or ask for a higher quota")
            b.count += 1

    def first_rejection(self, dep_id: str, org_id: str) -> bool:
        """True once per caller, deployment and minute: the over-quota refusal that gets audited."""
        key = (dep_id, org_id, int(self._clock() // 60))
        with self._lock:
            if key in self._rejection_audited:
                return False
            if len(self._rejection_audited) > 10_000:
                self._rejection_audited.clear()
            self._rejection_audited.add(key)
            return True

    def record(self, dep_id: str, owner_org_id: str, org_id: str, latency_ms: float, error: bool) -> None:
        """Add one admitted call's latency and outcome."""
        key = (dep_id, owner_org_id, org_id, int(self._clock() // 60))
        with self._lock:
            b = self._pending.get(key)
            if b is None:
                b = self._pending[key] = Bucket()
            b.latency_sum_ms += latency_ms
            if latency_ms > b.latency_max_ms:
                b.latency_max_ms = latency_ms
            if error:
                b.errors += 1

    def _used(self, dep_id: str, org_id: str, minute: int) -> tuple[int, int]:
        """Calls in the current minute and UTC day: database base + in flight + pending (lock held)."""
        day = minute // 1440
        base = self._base.get((dep_id, org_id))
        used_minute = base.minute_count if base and base.minute == minute else 0
        used_day = base.day_count if base and base.day == day else 0
        for src in (self._inflight, self._pending):
            for (d, _, o, m), b in src.items():
                if d == dep_id and o == org_id:
                    if m == minute:
                        used_minute += b.count
                    if m // 1440 == day:
                        used_day += b.count
        return used_minute, used_day

    # ------------------------------------------------------------------------ database side
    def refresh_base(self, session: Session, dep_id: str, org_id: str) -> None:
        """Read the calls the database holds for this minute and day (all hub processes)."""
        with self._flush_lock:
            now = self._clock()
            minute, day = int(now // 60), int(now // 86400)
            m0 = _minute_dt(minute)
            d0 = _minute_dt(day * 1440)
            row = session.execute(select(
                func.coalesce(func.sum(case((DeploymentUsage.minute == m0, DeploymentUsage.count), else_=0)), 0),
                func.coalesce(func.sum(DeploymentUsage.count), 0))
                .where(DeploymentUsage.deployment_id == dep_id, DeploymentUsage.caller_org_id == org_id,
                       DeploymentUsage.minute >= d0)).one()
            with self._lock:
                self._base[(dep_id, org_id)] = _Base(minute, int(row[0]), day, int(row[1]))

    def flush(self, *, final: bool = False) -> int:
        """Write pending counts; audit minutes that closed (all of them when ``final``). Returns rows."""
        if self._factory is None:
            return 0
        t0 = time.perf_counter()
        with self._flush_lock:
            with self._lock:
                snapshot, self._pending = self._pending, {}
                self._inflight = snapshot
            if not snapshot and not self._minute_totals:
                return 0
            current = int(self._clock() // 60)
            try:
                with self._factory() as s:
                    for key, b in snapshot.items():
                        _upsert(s, key, b)
                    totals, closed = self._close_minutes(snapshot, current, final)
                    if closed and self._audit is not None:
                        self._audit(s, closed)
                    s.commit()
            except Exception:
                log.exception("usage flush failed; counts are kept for the next flush")
                with self._lock:
                    for key, b in snapshot.items():
                        self._pending.setdefault(key, Bucket()).add(b)
                    self._inflight = {}
                return 0
            self._minute_totals = totals
            with self._lock:
                self._inflight = {}
        self.flushes += 1
        self.flush_seconds += time.perf_counter() - t0
        return len(snapshot)

    def _close_minutes(self, snapshot: dict[Key, Bucket], current: int,
                       final: bool) -> tuple[dict[Key, Bucket], list[EventDraft]]:
        """New per-minute totals, and audit events for the minutes that closed (removed from them)."""
        totals = {k: Bucket(**vars(b)) for k, b in self._minute_totals.items()}
        for key, b in snapshot.items():
            totals.setdefault(key, Bucket()).add(b)
        drafts = []
        for key in [k for k in totals if final or k[3] < current]:
            b = totals.pop(key)
            dep_id, owner, org, minute = key
            drafts.append(EventDraft("deployment.usage", actor_org_id=org, resource_type="deployment",
                                     resource_id=dep_id, resource_org_id=owner,
                                     details={"minute": _minute_dt(minute).isoformat(), "count": b.count,
                                              "errors": b.errors, "rejected": b.rejected,
                                              "latency_mean_ms": round(b.latency_sum_ms / b.count, 3)
                                              if b.count else None,
                                              "latency_max_ms": round(b.latency_max_ms, 3)}))
        return totals, drafts

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the flushing thread (again, after ``close``); a running meter is left alone."""
        if self._factory is None or self.interval <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="consortium-usage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        """Stop the thread and write everything, closing open minutes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush(final=True)


def _minute_dt(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


def _upsert(s: Session, key: Key, b: Bucket) -> None:
    dep_id, owner, org, minute = key
    values = {"deployment_id": dep_id, "caller_org_id": org, "minute": _minute_dt(minute), "owner_org_id": owner,
              "count": b.count, "errors": b.errors, "rejected": b.rejected,
              "latency_sum_ms": b.latency_sum_ms, "latency_max_ms": b.latency_max_ms}
    t = cast(Table, DeploymentUsage.__table__)  # a declarative class maps a Table
    insert = postgresql.insert(t) if s.get_bind().dialect.name == "postgresql" else sqlite.insert(t)
    stmt = insert.values(**values)
    ex = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["deployment_id", "caller_org_id", "minute"],
        set_={"count": t.c.count + ex.count, "errors": t.c.errors + ex.errors, "rejected": t.c.rejected + ex.rejected,
              "latency_sum_ms": t.c.latency_sum_ms + ex.latency_sum_ms,
              "latency_max_ms": case((t.c.latency_max_ms > ex.latency_max_ms, t.c.latency_max_ms),
                                     else_=ex.latency_max_ms)})
    s.execute(stmt)


def usage_rows(session: Session, dep_id: str, *, caller_org_id: str | None = None,
               since: datetime | None = None, minutes: int | None = None,
               limit: int = 1440) -> list[DeploymentUsage]:
    """Per-minute usage rows of a deployment, newest first (optionally for one caller, and since a
    time or over the last ``minutes``)."""
    if minutes is not None:
        since = utcnow() - timedelta(minutes=minutes)
    q = select(DeploymentUsage).where(DeploymentUsage.deployment_id == dep_id)
    if caller_org_id is not None:
        q = q.where(DeploymentUsage.caller_org_id == caller_org_id)
    if since is not None:
        q = q.where(DeploymentUsage.minute >= since)
    return list(session.scalars(q.order_by(DeploymentUsage.minute.desc()).limit(limit)))
