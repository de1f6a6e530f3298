"""Verification of the audit chain: every link, its seal, and the checkpoints organizations hold.

``verify`` walks the whole chain in order and reports the first event altered, deleted or
reordered; events written before the chain was keyed are checked against their plain SHA-256
links and the seal over them. Each checkpoint handed in (signed by this hub, kept by an
organization) must still match: a chain cut short or rewritten before it fails, even if whoever
did it held the hub's keys.

Speed: the walk reads Core rows, each the text its MAC covers as the database assembles it (no
ORM objects, no datetime parsing, one string per event instead of twelve), and hashes each event
once, in one loop; on PostgreSQL a thread fetches the next batch while the walk hashes the last.
Over 1,000,000 events (``bench/bench_scale.py``, 7 Dec 2026, alternating runs): PostgreSQL
135,000-147,000 -> 201,000-233,000 events/s; SQLite about 195,000 either way.
"""

from __future__ import annotations

import queue
import threading
import time as clock
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from consortium.governance.audit import FIELDS, GENESIS, SEP, AuditChain, keyed_text, legacy_hash
from consortium.governance.audit_keys import check_checkpoint
from consortium.store.tables.audit import AuditEvent, AuditHead

E = AuditEvent
_TEXT = (E.request_id, E.actor_user_id, E.actor_org_id, E.action, E.resource_type, E.resource_id,
         E.resource_org_id, E.project_id, E.outcome, E.details)


@dataclass
class CheckpointResult:
    seq: int
    time: str
    ok: bool
    problem: str | None = None


@dataclass
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    problem: str | None = None
    seconds: float = 0.0
    key_id: str | None = None
    legacy_events: int = 0  # events 1..legacy_events predate the keyed chain (sealed at ``sealed_at``)
    sealed_at: datetime | None = None
    checkpoints: list[CheckpointResult] = field(default_factory=list)


class Broken(Exception):
    """The first problem found on the walk: the event it concerns and what is wrong."""

    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


def _time_column(session: Session) -> Any:
    """The event time as the text it is hashed as, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", E.time), "YYYY-MM-DD HH24:MI:SS.US")
    return type_coerce(E.time, String)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff'


def _prefetched(result: Any, batch: int) -> Generator[Any, None, None]:
    """``result``'s rows, the next ``batch`` fetched by a thread while this one checks the last:
    the database server works beside the hashing instead of in turn with it. The thread is joined
    before this ends, however it ends (a broken chain stops the walk early), so the connection is
    never used by two threads at once."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = result.fetchmany(batch)
                _put(chunks, stop, rows)
                if not rows:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the reader, raised there
            _put(chunks, stop, e)

    t = threading.Thread(target=fetch, name="audit-verify-fetch", daemon=True)
    t.start()
    try:
        while True:
            rows = chunks.get()
            if isinstance(rows, BaseException):
                raise rows
            if not rows:
                return
            yield from rows
    finally:
        stop.set()
        t.join()
        result.close()


def _plain(result: Any) -> Generator[Any, None, None]:
    try:
        yield from result
    finally:
        result.close()


def _put(chunks: queue.Queue[Any], stop: threading.Event, item: Any) -> None:
    while not stop.is_set():
        try:
            chunks.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _keyed_text_column(session: Session) -> Any:
    """The text an event's MAC covers (``keyed_text``), assembled by the database: one string per
    row reaches Python instead of twelve (on PostgreSQL the server assembles it beside the hashing,
    ``_prefetched``). Every field is read with
    ``coalesce``: a NULL written into the table reads as "" and fails its MAC, it does not end the
    walk. The event's own ``prev_hash`` stands for the chain's: the walk checks they agree first."""
    parts = [E.prev_hash, cast(E.seq, String), _time_column(session),
             *(func.coalesce(c, "") for c in _TEXT)]
    sep = literal(SEP, String)
    text: Any = parts[0]
    for part in parts[1:]:
        text = text.op("||")(sep).op("||")(part)
    return type_coerce(text, String)


def _walk_legacy(rows: Iterator[Any], prev: str, expected: int, last: int, seen: dict[int, str]) -> tuple[str, int]:
    """Check events ``expected``..``last``, written before the chain was keyed, by their plain
    SHA-256 links; returns the last hash and the next seq."""
    for seq, tm, rq, au, ao, ac, rt, ri, ro, pj, oc, dt, ev_prev, ev_hash in rows:
        if seq != expected:
            raise Broken(expected, f"event {expected} is missing (deleted)")
        if ev_prev != prev:
            raise Broken(seq, f"event {seq} does not follow event {seq - 1} (reordered, or its "
                              "predecessor was replaced)")
        if legacy_hash(prev, seq, tm, rq, au, ao, ac, rt, ri, ro, pj, oc, dt) != ev_hash:
            raise Broken(seq, f"event {seq} was altered")
        if seq in seen:
            seen[seq] = ev_hash
        prev, expected = ev_hash, expected + 1
        if seq == last:
            break
    return prev, expected


def _walk(rows: Iterator[Any], prev: str, expected: int, mac: Callable[[str], str],
          seen: dict[int, str]) -> tuple[str, int]:
    """Check the keyed events from ``expected`` on, in order (rows of seq, prev_hash, the keyed text,
    hash); returns the last hash and the next seq. One loop, no call per event but the MAC: this is
    the whole cost of verification."""
    sep, fields = SEP, FIELDS
    for seq, ev_prev, text, ev_hash in rows:
        if seq != expected:
            raise Broken(expected, f"event {expected} is missing (deleted)")
        if ev_prev != prev:
            raise Broken(seq, f"event {seq} does not follow event {seq - 1} (reordered, or its "
                              "predecessor was replaced)")
        if text.count(sep) != fields or mac(text) != ev_hash:  # a separator inside a field shifts them
            raise Broken(seq, f"event {seq} was altered")
        if seq in seen:
            seen[seq] = ev_hash
        prev, expected = ev_hash, expected + 1
    return prev, expected


def verify(session: Session, chain: AuditChain, checkpoints: Sequence[Mapping[str, Any]] = (),
           batch: int = 5000) -> VerifyResult:
    """Walk the whole chain; check its seal and each checkpoint (rejected unless signed by this hub)."""
    for cp in checkpoints:
        check_checkpoint(cp, chain.keys.public_key)
    t0 = clock.perf_counter()
    head = session.get(AuditHead, 1)
    mac = chain.keys.mac
    seen: dict[int, str] = {int(cp["seq"]): "" for cp in checkpoints}
    res = VerifyResult(True, 0, key_id=chain.keys.key_id)
    prev, expected = GENESIS, 1
    rows: Generator[Any, None, None] | None = None
    try:
        if head is None:
            raise Broken(None, "the chain's head is missing from the database (audit_head was edited)")
        keyed_from = _check_seal(head, chain, res)
        # up to the head read first: later events may commit meanwhile (PostgreSQL reads each
        # statement afresh), and the head commits together with the events it counts
        conn = session.connection()  # Core rows: no ORM loading per row
        if keyed_from > 1:
            legacy = (select(E.seq, _time_column(session), *_TEXT, E.prev_hash, E.hash)
                      .where(E.seq < min(keyed_from, head.seq + 1)).order_by(E.seq))
            prev, expected = _walk_legacy(iter(conn.execute(legacy)), prev, expected, keyed_from - 1, seen)
            if expected != keyed_from:
                raise Broken(expected, f"event {expected} is missing (deleted)")
            if head.seal is None or head.sealed_at is None:  # (_check_seal refused this already)
                raise Broken(None, _SEAL_MISSING)
            if chain.seal_mac(keyed_from, prev, head.sealed_at, head.key_id or "") != head.seal:
                raise Broken(keyed_from - 1, f"events 1..{keyed_from - 1}, written before the chain was "
                             "keyed, were rewritten since: the seal over them no longer matches")
        keyed = (select(E.seq, E.prev_hash, _keyed_text_column(session), E.hash)
                 .where(E.seq >= keyed_from, E.seq <= head.seq).order_by(E.seq).execution_options(yield_per=batch))
        result = conn.execute(keyed)
        # PostgreSQL's server works in another process: fetch beside the hashing. SQLite runs in
        # this one, and a fetching thread only trades the GIL with the walk row by row (slower).
        rows = _prefetched(result, batch) if conn.dialect.name == "postgresql" else _plain(result)
        prev, expected = _walk(rows, prev, expected, mac, seen)
        res.events = expected - 1
        if head.seq != res.events or head.last_hash != prev:
            raise Broken(res.events + 1, f"events after {res.events} were deleted (the head records {head.seq})")
    except Broken as b:
        res.ok, res.first_bad_seq, res.problem = False, b.seq, b.problem
        res.events = expected - 1
    finally:
        if rows is not None:
            rows.close()  # a walk stopped early: its fetching thread is joined before the session goes on
    res.checkpoints = [_match(cp, seen, res) for cp in checkpoints]
    if res.ok and not all(c.ok for c in res.checkpoints):
        bad = next(c for c in res.checkpoints if not c.ok)
        res.ok, res.problem = False, bad.problem
        res.first_bad_seq = res.events + 1 if bad.seq > res.events else bad.seq
    res.seconds = clock.perf_counter() - t0
    return res


_SEAL_MISSING = "the chain's seal is missing from the database (audit_head was edited)"


def _check_seal(head: AuditHead, chain: AuditChain, res: VerifyResult) -> int:
    """The first keyed event's seq, once the head's seal agrees with the key and the hub's record."""
    if head.seal is None or head.keyed_from is None or head.sealed_at is None:
        raise Broken(None, _SEAL_MISSING)
    if head.key_id != chain.keys.key_id:
        raise Broken(None, f"the chain is keyed with audit key {head.key_id}, but this hub holds audit key "
                     f"{chain.keys.key_id}: start it with the keyring (master.key or "
                     "CONSORTIUM_MASTER_KEY) the chain was written with")
    recorded = chain.recorded_seal()
    if recorded is not None and (recorded.get("keyed_from"), recorded.get("seal")) != (head.keyed_from, head.seal):
        raise Broken(None, "the chain's seal in the database differs from the one this hub recorded "
                     "at its upgrade (audit_head was edited)")
    res.legacy_events, res.sealed_at = head.keyed_from - 1, head.sealed_at
    return head.keyed_from


def _match(cp: Mapping[str, Any], seen: dict[int, str], res: VerifyResult) -> CheckpointResult:
    seq, t = int(cp["seq"]), str(cp["time"])
    if seq == 0:
        return CheckpointResult(seq, t, True)
    if seq > res.events:
        if not res.ok:
            return CheckpointResult(seq, t, False, f"not checked: the chain is broken before this "
                                    f"checkpoint's event {seq} ({res.problem})")
        cut = f"event {seq} was" if seq == res.events + 1 else f"events {res.events + 1}..{seq} were"
        return CheckpointResult(seq, t, False, f"the chain ends at event {res.events}, but the checkpoint "
                                f"of {t} vouches for event {seq}: {cut} deleted")
    if seen.get(seq) != cp["hash"]:
        return CheckpointResult(seq, t, False, f"event {seq} no longer matches the checkpoint of {t}: the "
                                f"chain up to event {seq} was rewritten with the hub's audit key")
    return CheckpointResult(seq, t, True)


def hash_only(n: int, chain: AuditChain) -> Iterable[str]:
    """The floor for the benchmark: the MAC of ``n`` events with no database."""
    prev = GENESIS
    for i in range(1, n + 1):
        prev = chain.keys.mac(keyed_text(prev, i, "2026-12-02 10:00:00.000000", f"r{i}", None, "org_x",
                                         "bench.read", "dataset", "ds", None, None, "ok", '{"j":1}'))
        yield prev

