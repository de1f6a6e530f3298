"""The tamper-evident audit log: every access and change appends an event to a keyed hash chain.

Each event's hash is a MAC (keyed BLAKE2b, ``audit_keys``) over its content and the previous
event's hash, with a key that is not in the database: whoever can only write the database cannot
alter, delete or reorder an event and recompute hashes that verify. ``audit_verify`` walks the
chain and names the first broken event. Appends serialize on one head row (``audit_head``),
updated first in the writing transaction so that concurrent writers queue instead of forking the
chain. The event is written in the same transaction as the change it records: both commit, or
neither. An API request's change does not take the head: its events are staged in an outbox
table in its transaction (``AuditChain.stage``), and the group commit (``GroupCommit``) chains
the staged events of many requests in one batch before the response goes out; a crash in
between leaves them staged, durable, for the next batch (the hub's start runs one).

A chain from before the keyed format keeps its plain SHA-256 links; the first start after the
upgrade *seals* those events with one MAC over their last hash (the head's ``keyed_from``,
``sealed_at``, ``seal``) and records the seal in ``HOME/audit-seal.json`` too, so that removing
the seal from the database does not make the hub seal a rewritten chain again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import Table, bindparam, delete, event, insert, select, update
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from consortium.governance.audit_keys import AuditKeys
from consortium.store.paging import BOUND_LIMIT, Key, Listing, Page, bound_key, page_statement, run_page
from consortium.store.tables.audit import AuditEvent, AuditHead, AuditOutbox
from consortium.store.tables.base import utcnow

GENESIS = "0" * 64
SEP = "\x1f"  # field separator of the hashed text; never inside a stored field (see ``_field``)
FIELDS = 12  # seq, time and the 10 text columns of an event
EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]  # a declarative class's is a Table
OUTBOX: Table = AuditOutbox.__table__  # type: ignore[assignment]


@dataclass
class EventDraft:
    action: str
    outcome: str = "ok"
    request_id: str = "-"
    actor_user_id: str | None = None
    actor_org_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    resource_org_id: str | None = None
    project_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def canonical(details: dict[str, Any]) -> str:
    """Sorted, compact JSON; ASCII-only, so it never holds the separator."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def time_text(t: datetime) -> str:
    """The text an event's time is hashed as: naive UTC to the microsecond (SQLite stores it so)."""
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _columns(d: EventDraft) -> dict[str, Any]:
    """A draft's stored columns but ``time`` (fields cleaned of the separator, details canonical)."""
    return {"request_id": _field(d.request_id), "actor_user_id": _field(d.actor_user_id),
            "actor_org_id": _field(d.actor_org_id), "action": _field(d.action),
            "resource_type": _field(d.resource_type), "resource_id": _field(d.resource_id),
            "resource_org_id": _field(d.resource_org_id), "project_id": _field(d.project_id),
            "outcome": _field(d.outcome), "details": canonical(d.details)}


@overload
def _field(v: str) -> str: ...
@overload
def _field(v: None) -> None: ...
def _field(v: str | None) -> str | None:
    """A stored field never contains the separator, so the hashed text splits one way only."""
    return v.replace(SEP, "\ufffd") if v is not None and SEP in v else v


def keyed_text(prev: str, seq: int, time: str, request_id: str, actor_user_id: str | None,
               actor_org_id: str | None, action: str, resource_type: str | None, resource_id: str | None,
               resource_org_id: str | None, project_id: str | None, outcome: str, details: str) -> str:
    """What an event's MAC covers (``prev`` is the previous event's hash)."""
    return SEP.join((prev, str(seq), time, request_id, actor_user_id or "", actor_org_id or "", action,
                     resource_type or "", resource_id or "", resource_org_id or "", project_id or "",
                     outcome, details))


def legacy_hash(prev: str, seq: int, time: str, request_id: str, actor_user_id: str | None,
                actor_org_id: str | None, action: str, resource_type: str | None, resource_id: str | None,
                resource_org_id: str | None, project_id: str | None, outcome: str, details: str) -> str:
    """The plain SHA-256 link of an event written before the chain was keyed (``time`` as stored)."""
    import hashlib

    iso = time[:10] + "T" + time[11:] + "+00:00"  # the old format: isoformat of an aware UTC time
    text = keyed_text(prev, seq, iso, request_id, actor_user_id, actor_org_id, action, resource_type,
                      resource_id, resource_org_id, project_id, outcome, details)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Seal:
    """Events before ``keyed_from`` predate the keyed chain; ``mac`` covers their last hash."""

    keyed_from: int
    sealed_at: datetime
    key_id: str
    mac: str


class AuditChain:
    """Appends to, seals and checkpoints the chain with the hub's audit keys (wired in ``Services``)."""

    def __init__(self, keys: AuditKeys, seal_file: Path) -> None:
        self.keys = keys
        self.seal_file = seal_file

    # -- the seal ------------------------------------------------------------------------------
    def seal_mac(self, keyed_from: int, prev: str, sealed_at: datetime, key_id: str) -> str:
        return self.keys.mac(SEP.join(("seal", key_id, str(keyed_from), prev, time_text(sealed_at))))

    def recorded_seal(self) -> dict[str, Any] | None:
        """The seal as this hub recorded it outside the database (None before its first start)."""
        if not self.seal_file.exists():
            return None
        seal: dict[str, Any] = json.loads(self.seal_file.read_text())
        return seal

    def _record(self, seal: Seal) -> None:
        from consortium.fileutil import write_private

        doc = {"keyed_from": seal.keyed_from, "key_id": seal.key_id, "seal": seal.mac,
               "sealed_at": seal.sealed_at.isoformat()}
        write_private(self.seal_file, json.dumps(doc, indent=1).encode())

    def ensure_head(self, session: Session) -> None:
        """Create the head of a new chain, or seal a chain from before the keyed format (once)."""
        head = session.get(AuditHead, 1, with_for_update=True)
        now = utcnow()
        if head is None:
            head = AuditHead(id=1, seq=0, last_hash=GENESIS)
            session.add(head)
        elif head.seal is not None or self.recorded_seal() is not None:
            if head.seal is not None and head.key_id is not None and head.sealed_at is not None \
                    and head.keyed_from is not None and self.recorded_seal() is None:
                self._record(Seal(head.keyed_from, head.sealed_at, head.key_id, head.seal))
            return  # sealed already; a seal missing from the database is for verify to report
        prev = head.last_hash if head.seq else GENESIS
        head.keyed_from, head.sealed_at, head.key_id = head.seq + 1, now, self.keys.key_id
        head.seal = self.seal_mac(head.keyed_from, prev, now, self.keys.key_id)
        session.flush()
        self._record(Seal(head.keyed_from, now, self.keys.key_id, head.seal))

    # -- appending -----------------------------------------------------------------------------
    def append(self, session: Session, drafts: list[EventDraft]) -> list[AuditEvent]:
        """Append events in the caller's transaction; they become visible when it commits."""
        out = [AuditEvent(**row) for row in self._rows(session, drafts)]
        session.add_all(out)
        return out

    def stage(self, session: Session, drafts: list[EventDraft]) -> None:
        """Write events to the outbox in the caller's transaction: they commit with its change,
        and the transaction never takes the chain's head, so concurrent changes do not queue on
        it. The group commit's next batch (``append_rows(drain=True)``) puts them on the chain."""
        if drafts:
            t = utcnow()
            session.connection().execute(insert(OUTBOX), [{**_columns(d), "time": t} for d in drafts])

    def append_rows(self, session: Session, drafts: list[EventDraft], drain: bool = False) -> None:
        """``append`` as one multi-row INSERT, without ORM objects (the group commit's); ``drain``:
        the outbox's staged events first (all of them, whoever staged them: the head's lock makes
        the batch the only one taking them)."""
        rows = self._rows(session, drafts, core=True, drain=drain)
        if rows:  # Core statements on the session's connection: no ORM bulk machinery per batch
            session.connection().execute(insert(EVENTS), rows)

    def _rows(self, session: Session, drafts: list[EventDraft], core: bool = False,
              drain: bool = False) -> list[dict[str, Any]]:
        """The next events' rows, linked and MACed; the head moves in the same transaction
        (``core``: as Core statements, which skip the ORM's bulk-update evaluation)."""
        c = AuditHead.__table__.c
        target: Any = AuditHead.__table__ if core else AuditHead
        run: Any = session.connection().execute if core else session.execute
        now = utcnow()
        items = [{**_columns(d), "time": now} for d in drafts]
        if drain:  # lock the head, then take what the outbox holds: committed before the lock
            row = run(update(target).where(c.id == 1).values(seq=c.seq).returning(c.seq, c.last_hash)).one()
            staged = session.connection().execute(delete(OUTBOX).returning(*OUTBOX.c)).all()
            items = [{k: v for k, v in r._mapping.items() if k != "id"} for r in sorted(staged, key=lambda r: r.id)] \
                + items
            first = row.seq + 1
        elif items:
            row = run(update(target).where(c.id == 1).values(seq=c.seq + len(items))
                      .returning(c.seq, c.last_hash)).one()
            first = row.seq - len(items) + 1
        if not items:
            return []
        prev, mac = row.last_hash, self.keys.mac
        out = []
        for i, ev in enumerate(items):
            ev["seq"], ev["prev_hash"] = first + i, prev
            ev["hash"] = prev = mac(keyed_text(prev, ev["seq"], time_text(ev["time"]), ev["request_id"],
                                               ev["actor_user_id"], ev["actor_org_id"], ev["action"],
                                               ev["resource_type"], ev["resource_id"], ev["resource_org_id"],
                                               ev["project_id"], ev["outcome"], ev["details"]))
            out.append(ev)
        values: dict[str, Any] = {"last_hash": prev}
        if drain:
            values["seq"] = first + len(items) - 1
        run(update(target).where(c.id == 1).values(**values))
        return out

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint(self, session: Session) -> dict[str, Any]:
        """The committed head (seq, hash), timed and signed: a holder can later prove a rewrite."""
        head = session.get(AuditHead, 1)
        seq, last = (head.seq, head.last_hash) if head is not None else (0, GENESIS)
        return self.keys.sign_checkpoint(seq, last, utcnow().isoformat(timespec="microseconds"))

    def public_key(self) -> dict[str, str]:
        return {"algorithm": "Ed25519", "key_id": self.keys.key_id, "public_key": self.keys.public_key}


WROTE = "audit_wrote"  # session.info flag: the transaction changed something (see ``wrote``)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _ctx: Any) -> None:
    if session.new or session.dirty or session.deleted:
        session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not state.is_select:  # an UPDATE, DELETE, INSERT or a text statement: counted as a change
        state.session.info[WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction's end clears the flag: a savepoint's release or rollback
    # (SQLAlchemy fires after_commit/after_rollback for those too) leaves the request's earlier
    # changes pending, and a request that wrote must still commit them.
    if transaction.parent is None:
        session.info.pop(WROTE, None)


def wrote(session: Session) -> bool:
    """Whether the session's transaction changed (or may have changed) anything, pending changes
    included: a request that did must commit its event with its change, in its own transaction."""
    return bool(session.info.get(WROTE) or session.new or session.dirty or session.deleted)


class _Waiter:
    __slots__ = ("done", "drafts", "error", "notify")

    def __init__(self, drafts: list[EventDraft], notify: Callable[[], None] | None = None) -> None:
        self.drafts = drafts
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.notify = notify  # called by the writer once ``done`` is set (an event loop's waiter)


class GroupCommit:
    """Appends the events of many callers in one transaction: one head update, one commit (one
    fsync), in the order they were submitted (home-made: a writer thread and a queue, because the
    chain's head is one row and SQLite one writer, so a single writer per process is the natural
    batching point).

    ``submit`` returns only once its events are committed, and raises if they were not: nothing
    acknowledged is lost, and a crash mid-batch rolls the whole batch back (the chain stays whole,
    ``audit_verify`` passes). There is no artificial wait: a batch is what queued while the
    previous commit ran, so one caller alone pays one transaction as before, and 32 at once share
    a few. A batch that fails is retried one submission at a time, so that one bad event does not
    fail the others. The thread starts on first use (again after a fork) and ends when idle.

    Every batch also moves the outbox's staged events onto the chain (the API's changes:
    ``AuditChain.stage``), and runs ``hooks`` in its transaction (the hub's: the tokens' last
    uses, ``control_cache.ControlCache.write_uses``).
    """

    def __init__(self, factory: sessionmaker[Session], chain: AuditChain, max_batch: int = 2000,
                 idle_s: float = 10.0, hooks: tuple[Callable[[Session], None], ...] = ()) -> None:
        self.factory, self.chain, self.hooks = factory, chain, hooks
        self.max_batch, self.idle_s = max_batch, idle_s
        self._q: queue.Queue[_Waiter] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.batches = self.events = 0  # counters, for the benchmark and tests

    def submit(self, drafts: list[EventDraft], staged: bool = False) -> None:
        """Append ``drafts`` and return once they are committed; ``staged``: also wait until the
        events staged in the outbox before this call (``AuditChain.stage``) are on the chain (every
        batch takes them: an empty ``drafts`` with ``staged`` asks for a batch all the same)."""
        if not drafts and not staged:
            return
        w = _Waiter(drafts)
        self._enqueue(w)
        w.done.wait()
        if w.error is not None:
            raise w.error

    async def submit_async(self, drafts: list[EventDraft], staged: bool = False) -> None:
        """``submit`` for a caller on an event loop: it waits without holding a thread (the writer
        wakes the loop when the batch is committed), with the same guarantee."""
        if not drafts and not staged:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not fut.done():
                fut.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(settle)

        w = _Waiter(drafts, wake)
        self._enqueue(w)
        await fut
        if w.error is not None:
            raise w.error

    def _enqueue(self, w: _Waiter) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._q = queue.Queue()  # a forked child does not inherit its parent's waiters
                self._thread = threading.Thread(target=self._run, name="audit-group-commit", daemon=True)
                self._thread.start()
            self._q.put(w)

    def _run(self) -> None:
        q = self._q
        while True:
            try:
                first = q.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if q.empty():
                        self._thread = None
                        return
                continue
            batch, n = [first], len(first.drafts)
            while n < self.max_batch:
                try:
                    w = q.get_nowait()
                except queue.Empty:
                    break
                batch.append(w)
                n += len(w.drafts)
            self._commit(batch)

    def _commit(self, batch: list[_Waiter]) -> None:
        try:
            self._append([d for w in batch for d in w.drafts])
        except BaseException as e:  # noqa: BLE001 - every waiter learns what happened
            if len(batch) == 1:
                batch[0].error = e
            else:
                for w in batch:
                    try:
                        self._append(w.drafts)
                    except BaseException as one:  # noqa: BLE001 - handed to its waiter
                        w.error = one
        else:
            self.batches += 1
            self.events += sum(len(w.drafts) for w in batch)
        for w in batch:
            w.done.set()
            if w.notify is not None:
                try:
                    w.notify()
                except RuntimeError:  # its event loop has closed: nobody waits any more
                    pass

    def _append(self, drafts: list[EventDraft]) -> None:
        from consortium.store.db import transaction

        with transaction(self.factory) as s:
            self.chain.append_rows(s, drafts, drain=True)
            for hook in self.hooks:
                hook(s)


def events_for_org(org_id: str, *, project_ids: list[str] | None = None, action: str | None = None,
                   since_seq: int = 0, outcome: str | None = None) -> Listing:
    """Events that concern an organization: it acted, it owns the resource, or a project it is in
    (newest first, by ``seq``). Each of the three is its own index range (``Listing.any_of``)."""
    where, any_of = _concerning(AuditEvent, org_id, sorted(set(project_ids or ())),
                                f"{action}%" if action else None, outcome or None, since_seq)
    return Listing(select(AuditEvent).where(*where), (AuditEvent.seq,), desc=True, any_of=any_of)


def _concerning(c: Any, org: Any, project_ids: list[Any], action_like: Any, outcome: Any,
                since: Any) -> tuple[list[ColumnElement[bool]], tuple[ColumnElement[bool], ...]]:
    """``events_for_org``'s filters on the columns ``c`` (the mapped class, or its table's ``c``),
    with values or bound parameters (None: no such filter): those every event meets, and those
    of which it meets one."""
    where = [c.seq > since]
    if action_like is not None:
        where.append(c.action.like(action_like))
    if outcome is not None:
        where.append(c.outcome == outcome)
    return where, (c.actor_org_id == org, c.resource_org_id == org, *(c.project_id == pid for pid in project_ids))


PUBLIC = ("seq", "time", "request_id", "actor_user_id", "actor_org_id", "action", "resource_type",
          "resource_id", "resource_org_id", "project_id", "outcome", "details", "hash")  # what the API shows


@functools.lru_cache(maxsize=256)
def _org_page_stmt(projects: int, action: bool, outcome: bool, after: bool, dialect: str) -> Any:
    """``org_page``'s statement for one shape, built once with bound parameters: org, p0.., action,
    outcome, since, limit, k0."""
    c = AuditEvent.__table__.c
    where, any_of = _concerning(c, bindparam("org", type_=c.actor_org_id.type),
                                [bindparam(f"p{i}", type_=c.project_id.type) for i in range(projects)],
                                bindparam("action", type_=c.action.type) if action else None,
                                bindparam("outcome", type_=c.outcome.type) if outcome else None,
                                bindparam("since", type_=c.seq.type))
    order = (c.seq,)
    return page_statement(dialect, select(*(c[n] for n in PUBLIC)).where(*where), order,
                          bound_key(order) if after else None, BOUND_LIMIT, desc=True, any_of=any_of)


def org_page(session: Session, org_id: str, project_ids: list[str], after: Key | None, limit: int, *,
             action: str | None = None, since_seq: int = 0, outcome: str | None = None) -> Page[dict[str, Any]]:
    """A page of ``events_for_org`` as the API shows it (``PUBLIC``; ``details`` as its JSON text),
    in one Core statement built once per shape: the same keyset page, so the same cursors."""
    pids = sorted(set(project_ids))
    stmt = _org_page_stmt(len(pids), bool(action), bool(outcome), after is not None,
                          session.get_bind().dialect.name)
    params: dict[str, Any] = {"org": org_id, "since": since_seq, **{f"p{i}": pid for i, pid in enumerate(pids)}}
    if action:
        params["action"] = f"{action}%"
    if outcome:
        params["outcome"] = outcome
    page = run_page(session, stmt, params, after, limit, 1)
    return Page([dict(zip(PUBLIC, r, strict=False)) for r in page.items], page.after)  # the key (seq) follows


def events_for_project(project_id: str, *, since_seq: int = 0) -> Listing:
    """Events that concern a project's resources (newest first): every member organization sees them."""
    return Listing(select(AuditEvent).where(AuditEvent.project_id == project_id, AuditEvent.seq > since_seq),
                   (AuditEvent.seq,), desc=True)


def iter_all(session: Session) -> Iterator[AuditEvent]:
    yield from session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=5000))
