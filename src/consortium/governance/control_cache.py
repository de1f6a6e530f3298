"""The control plane's caches (resolved credentials, received grants) and their invalidation.

A hub process keeps what resolving a token or session and finding a grant read from the database,
so that an authenticated request costs no ORM lookups when nothing changed. What may change:

* **Revocation and access changes bump one counter** (``control_revision``) in the same
  transaction: any ORM change to a token, web session, user, organization, membership, grant,
  project or project membership (``before_commit`` below; a bulk ``UPDATE``/``DELETE`` through the
  session counts too), except a token's ``last_used_at`` and a new token or web session (nothing
  cached refers to it). A raw SQL text statement is not seen: code that revokes with one must
  call ``bump`` itself.
* **A token's last use is written off the request's path**: noted here (``record_use``) and
  written by the next audit batch (``write_uses``), so that concurrent requests of one token never
  queue on its row.
* **The process that committed the change drops its caches at once** (``after_commit``), so its
  own next request already reads the database.
* **Every other process re-reads the counter at most every ``POLL_S`` seconds** (one primary-key
  read, in the request's own session, before it uses the cache) and drops its caches when it
  moved. A credential or grant revoked on one replica is therefore refused by every replica on the
  same database within ``POLL_S`` plus one request's time, well inside the 2 s the scale-out asks.
* **A fill that raced a drop is discarded**: each transaction remembers the cache generation it
  started under; an entry read under an older generation is never stored.

Expiry is checked on every hit (the cache holds the times), and an entry lives ``TTL_S`` at most.
The cache is the session factory's (``sessionmaker(info={"control": cache})``, ``Hub.start``); a
session without one (CLI, job workers on a plain factory) reads the database each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import event, inspect, or_, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from consortium.store.tables.control import ControlRevision
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import ApiToken, Membership, Organization, User, WebSession
from consortium.store.tables.projects import Project, ProjectMember

POLL_S = 0.5  # how often a process re-reads the revision (the cross-replica bound, minus a request)
TTL_S = 60.0  # an entry's longest life, whatever the revision says
MAX_ENTRIES = 20_000  # per map; past it the map starts over
WATCHED: tuple[type[Any], ...] = (ApiToken, WebSession, User, Organization, Membership, Grant, Project,
                                  ProjectMember)
WATCHED_TABLES = frozenset(c.__tablename__ for c in WATCHED)
NO_BUMP = "control_no_bump"  # execution option of a statement that changes nothing access depends on
_BUMP, _GEN = "control_bump", "control_gen"

T = TypeVar("T")


class ControlCache:
    """Maps (``credentials``: secret hash -> resolved principal; ``grants``: org -> its received
    grants; ...) that one hub process shares between its requests, dropped together."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._maps: dict[str, dict[Any, tuple[float, Any]]] = {}
        self.generation = 0
        self.revision: int | None = None
        self._checked = 0.0
        self.hits = self.misses = self.drops = 0
        self._uses: dict[str, datetime] = {}  # token id -> last use not yet written

    def note_use(self, token_id: str, at: datetime) -> None:
        """Remember a token's use, to be written by ``write_uses`` in a transaction of its own."""
        with self._lock:
            self._uses[token_id] = at

    def write_uses(self, session: Session) -> None:
        """Write the uses noted since the last call, one UPDATE per token, in ``session``'s
        transaction (the audit group commit's batch: ``Hub.audit_group``). A use is informational:
        one lost with a failed batch is written again at the token's next use after five minutes."""
        if not self._uses:
            return
        with self._lock:
            uses, self._uses = self._uses, {}
        conn = session.connection()  # Core on the connection: no ORM events, no revision bump
        for token_id, at in uses.items():
            conn.execute(update(ApiToken).where(ApiToken.id == token_id)
                         .where(or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < at))
                         .values(last_used_at=at))

    def drop(self) -> None:
        with self._lock:
            self._maps = {}
            self.generation += 1
            self.drops += 1

    def check(self, session: Session) -> int:
        """Re-read the revision when ``poll_s`` has passed (dropping everything if it moved), and
        answer the generation this transaction fills under."""
        gen: int | None = session.info.get(_GEN)
        now = time.monotonic()
        if now - self._checked >= self.poll_s:
            rev = session.scalar(select(ControlRevision.revision).where(ControlRevision.id == 1))
            self._checked = now
            if rev != self.revision:
                if self.revision is not None:
                    self.drop()
                self.revision = rev
        if gen is None:
            gen = self.generation
            session.info[_GEN] = gen
        return gen

    def peek(self, kind: str, key: Any) -> Any | None:
        """The cached value when ``get`` would answer it without reading anything (the revision
        was read less than ``poll_s`` ago and the entry is within its TTL), else None: for a caller
        on an event loop, which reads the database in a thread only when this says None."""
        now = time.monotonic()
        if now - self._checked >= self.poll_s:
            return None
        hit = self._maps.get(kind, {}).get(key)
        if hit is None or now - hit[0] >= TTL_S:
            return None
        self.hits += 1
        return hit[1]

    def get(self, session: Session, kind: str, key: Any, load: Callable[[], T]) -> T:
        """The cached value, else ``load()``: stored unless a drop happened since this transaction's
        first check, or the transaction holds uncommitted changes of its own."""
        gen = self.check(session)
        now = time.monotonic()
        hit = self._maps.get(kind, {}).get(key)
        if hit is not None and now - hit[0] < TTL_S:
            self.hits += 1
            value: T = hit[1]
            return value
        self.misses += 1
        value = load()
        if session.info.get(_BUMP) or session.new or session.dirty or session.deleted:
            return value  # read beside the transaction's own uncommitted changes: not for others
        with self._lock:
            if gen == self.generation:
                m = self._maps.setdefault(kind, {})
                if len(m) >= MAX_ENTRIES:
                    m.clear()
                m[key] = (now, value)
        return value


def of(session: Session) -> ControlCache | None:
    """The cache of the session's factory, if it has one."""
    cache: ControlCache | None = session.info.get("control")
    return cache


def record_use(session: Session, token_id: str, at: datetime) -> None:
    """Record a token's use: noted in the hub's cache and written with the next audit batch, so
    that a request's transaction never holds the token's row (every request of a busy token
    would queue on it); without a cache (CLI, job workers), in ``session``'s transaction."""
    cache = of(session)
    if cache is not None:
        cache.note_use(token_id, at)
    else:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at)
                        .execution_options(**{NO_BUMP: True}))


def cached(session: Session, kind: str, key: Any, load: Callable[[], T]) -> T:
    cache = of(session)
    return load() if cache is None else cache.get(session, kind, key, load)


def changed_here(session: Session) -> bool:
    """Whether the session's transaction changed (or holds changes to) what access depends on:
    then what the cache says about it may be stale for this transaction, and the rows are read."""
    return bool(session.info.get(_BUMP)) or _pending(session)


def bump(session: Session) -> None:
    """Mark the session's transaction as changing access: it bumps the revision when it commits."""
    session.info[_BUMP] = True


def _changes_access(obj: object, dirty: bool, new: bool = False) -> bool:
    if not isinstance(obj, WATCHED):
        return False
    if new and isinstance(obj, ApiToken | WebSession):
        return False  # nothing cached refers to a credential that did not exist (a failed lookup is not kept)
    if dirty and isinstance(obj, ApiToken):
        changed = {a.key for a in inspect(obj).attrs if a.history.has_changes()}
        return bool(changed - {"last_used_at"})
    return True


def _pending(session: Session) -> bool:
    return (any(_changes_access(o, False, new=True) for o in session.new)
            or any(_changes_access(o, False) for o in session.deleted)
            or any(_changes_access(o, True) for o in session.dirty))


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _ctx: Any) -> None:
    if not session.info.get(_BUMP) and _pending(session):
        session.info[_BUMP] = True


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and not state.execution_options.get(NO_BUMP):
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in WATCHED_TABLES:
            state.session.info[_BUMP] = True


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_BUMP) or _pending(session):
        session.info[_BUMP] = True
        session.execute(update(ControlRevision).where(ControlRevision.id == 1)
                        .values(revision=ControlRevision.revision + 1)
                        .execution_options(**{NO_BUMP: True}))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_GEN, None)
    if session.info.pop(_BUMP, None):
        cache = of(session)
        if cache is not None:
            cache.drop()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_GEN, None)
    session.info.pop(_BUMP, None)
