"""Usage accounting and quotas for deployments: calls per calling organization per minute.

Every call is counted in memory (a lock and a dict update, about a microsecond) and flushed to
the ``deployment_usage`` table once a second by a background thread, one upsert per
(deployment, caller organization, minute).

Quotas (``per_minute``/``per_day`` from the grant) hold across hub replicas through shared
counters in the database (the ``throttles`` table, ``governance.throttle.counter``: one row per
deployment, caller and minute, one per day). A process reserves calls in small batches: it adds
``batch`` calls (a tenth of the minute's quota, a hundredth of the day's, 1 to 100) to both
counters in one transaction, but never beyond a limit, and admits that many from memory. So a
quota costs one database transaction per batch, not per prediction, and no replica ever admits
more than the quota: the slack is the other way, calls reserved by one replica and unused when
another is refused, at most ``batch - 1`` per other replica. When a minute closes, its unused
reservations are given back to the day's counter (a crashed process's are lost to that day).
Once a minute's reservation comes back empty, the caller is refused from memory until the
minute ends. Redis (INCR with an expiry) would spare the database these few transactions; it is
not needed at these rates, so the hub has no Redis dependency. Per-request database writes were
the alternative: a transaction per prediction.

Audit rule (home-made): predictions are not written to the hash chain one by one, which would
dominate the cost of a prediction. When a minute closes, each (deployment, caller org, minute)
aggregate this process saw is appended as one ``deployment.usage`` event (count, errors,
rejected, latency); every denied call (no credential, no grant) is audited as it happens, and
the first over-quota refusal per caller per minute too (the rest are counted in the aggregate).

Without a session factory (the doctest below) quotas are counted in this process only.

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

from sqlalchemy import Table, case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import QuotaExceeded, Unavailable
from consortium.governance.audit import EventDraft
from consortium.governance.throttle import counter
from consortium.store.tables.base import utcnow
from consortium.store.tables.registry import DeploymentUsage

log = logging.getLogger("consortium.usage")
Key = tuple[str, str, str, int]  # deployment id, owner org id, caller org id, minute (epoch // 60)
QuotaKey = tuple[str, str, int]  # deployment id, caller org id, minute


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


def batch_size(limits: dict[str, Any]) -> int:
    """Calls reserved at once against ``limits``: a tenth of a minute's quota, a hundredth of a
    day's, between 1 and 100.

    >>> batch_size({"per_minute": 60}), batch_size({"per_day": 1_000_000}), batch_size({"per_minute": 5})
    (6, 100, 1)
    """
    n = 100
    if limits.get("per_minute") is not None:
        n = min(n, int(limits["per_minute"]) // 10)
    if limits.get("per_day") is not None:
        n = min(n, int(limits["per_day"]) // 100)
    return max(1, n)


def _counter_keys(dep_id: str, org_id: str, minute: int) -> tuple[str, str]:
    return f"quota-m:{dep_id}:{org_id}:{minute}", f"quota-d:{dep_id}:{org_id}:{minute // 1440}"


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
        self._allow: dict[QuotaKey, int] = {}  # calls reserved in the shared counters, not yet admitted
        self._exhausted: dict[QuotaKey, str] = {}  # "minute" / "day": a reservation came back empty
        self._reserve_lock = threading.Lock()
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
        shared = bool(limits) and self._factory is not None
        if limits and shared and self.needs_reservation(dep_id, org_id, limits):
            self.reserve(dep_id, org_id, limits)  # the runtime has done it in a thread already
        with self._lock:
            b = self._pending.get(key)
            if b is None:
                b = self._pending[key] = Bucket()
            if limits:
                over = self._take_reserved(dep_id, org_id, minute) if shared else self._over(dep_id, org_id,
                                                                                           minute, limits)
                if over is not None:
                    b.rejected += 1
                    if over == "minute":
                        raise QuotaExceeded(f"quota exceeded: {limits['per_minute']} calls per minute",
                                            retry_after=max(1, math.ceil(60 - now % 60)),
                                            hint="wait, or ask the deployment's owner for a higher quota")
                    raise QuotaExceeded(f"quota exceeded: {limits['per_day']} calls per day",
                                        retry_after=max(1, math.ceil(86400 - now % 86400)),
                                        hint="wait until midnight UTC, or ask for a higher quota")
            b.count += 1

    def _take_reserved(self, dep_id: str, org_id: str, minute: int) -> str | None:
        """Admit one call from this process's reservation (lock held); else which limit is reached."""
        k = (dep_id, org_id, minute)
        left = self._allow.get(k, 0)
        if left > 0:
            self._allow[k] = left - 1
            return None
        return self._exhausted.get(k, "minute")

    def needs_reservation(self, dep_id: str, org_id: str, limits: dict[str, Any] | None) -> bool:
        """True when a call under ``limits`` must first reserve from the shared counters (a
        database transaction: the runtime does it in a thread)."""
        if not limits or self._factory is None:
            return False
        k = (dep_id, org_id, int(self._clock() // 60))
        return self._allow.get(k, 0) <= 0 and k not in self._exhausted

    def reserve(self, dep_id: str, org_id: str, limits: dict[str, Any]) -> int:
        """Reserve up to ``batch_size(limits)`` calls of this minute in the shared counters, never
        past a limit; how many. Nothing reserved marks the minute exhausted for this caller."""
        if self._factory is None:
            return 0
        minute = int(self._clock() // 60)
        k = (dep_id, org_id, minute)
        with self._reserve_lock:  # one at a time: concurrent callers wait for this one's batch
            if self._allow.get(k, 0) > 0 or k in self._exhausted:
                return 0
            per_minute, per_day = limits.get("per_minute"), limits.get("per_day")
            mk, dk = _counter_keys(dep_id, org_id, minute)
            try:
                with self._factory() as s:
                    rows, room, reason = [], batch_size(limits), "minute"
                    for key, cap, what in ((mk, per_minute, "minute"), (dk, per_day, "day")):
                        if cap is not None:  # minute first, then day: every process locks in this order
                            row = counter(s, key)
                            rows.append(row)
                            if cap - row.count < room:
                                room, reason = max(0, int(cap) - row.count), what
                    for row in rows:
                        row.count += room
                        row.last_at = utcnow()
                    s.commit()
            except Exception as e:
                log.exception("quota reservation failed")
                raise Unavailable("the quota counters cannot be read right now; nothing was counted",
                                  hint="try again in a moment") from e
            with self._lock:
                self._allow[k] = self._allow.get(k, 0) + room
                if room == 0:
                    self._exhausted[k] = reason
        return room

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

    def _over(self, dep_id: str, org_id: str, minute: int, limits: dict[str, Any]) -> str | None:
        """Without a database: which limit this process's own counts reach (lock held)."""
        used_minute, used_day = self._used(dep_id, org_id, minute)
        if limits.get("per_minute") is not None and used_minute >= limits["per_minute"]:
            return "minute"
        if limits.get("per_day") is not None and used_day >= limits["per_day"]:
            return "day"
        return None

    def _used(self, dep_id: str, org_id: str, minute: int) -> tuple[int, int]:
        """Calls this process counted in the current minute and UTC day: in flight + pending (lock held)."""
        day = minute // 1440
        used_minute = used_day = 0
        for src in (self._inflight, self._pending):
            for (d, _, o, m), b in src.items():
                if d == dep_id and o == org_id:
                    if m == minute:
                        used_minute += b.count
                    if m // 1440 == day:
                        used_day += b.count
        return used_minute, used_day

    # ------------------------------------------------------------------------ database side
    def give_back(self, *, final: bool = False) -> int:
        """Return unused reservations of closed minutes to the day's counter (all of them, to both
        counters, when ``final``: the process stops); how many calls."""
        current = int(self._clock() // 60)
        with self._lock:
            done = [k for k in self._allow if final or k[2] < current]
            unused = {k: n for k in done if (n := self._allow.pop(k))}
            for k in [k for k in self._exhausted if k[2] < current]:
                del self._exhausted[k]
        if not unused or self._factory is None:
            return 0
        try:
            with self._factory() as s:
                for (dep_id, org_id, minute), n in sorted(unused.items()):
                    mk, dk = _counter_keys(dep_id, org_id, minute)
                    for key in (mk, dk) if minute == current else (dk,):
                        row = counter(s, key)
                        row.count = max(0, row.count - n)
                s.commit()
        except Exception:  # the day's quota is short by these calls; nothing is over-admitted
            log.exception("could not give %d unused quota reservations back", sum(unused.values()))
            return 0
        return sum(unused.values())

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
            self.give_back()

    def close(self) -> None:
        """Stop the thread and write everything, closing open minutes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush(final=True)
        self.give_back(final=True)


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
