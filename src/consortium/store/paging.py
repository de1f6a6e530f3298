"""Keyset pagination: one page of a query, ordered by a unique key, after the last key seen.

Every list of the API pages this way (``consortium.api.pagination`` turns the key into an opaque
cursor). A page is ``WHERE (k1, k2, ...) > (last k1, last k2, ...) ORDER BY k1, k2, ... LIMIT n+1``
(``<`` and descending for a newest-first list), never ``OFFSET``: the database walks its index
from the last key, so page 1,000 costs what page 1 costs, and a row inserted or deleted between
two page requests neither repeats nor hides another row. The key must be unique (end it with the
primary key) and the query keeps its own filters, so a key taken from anywhere reaches only rows
the query would have returned anyway.

>>> from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
>>> rows = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(8)))
>>> engine = create_engine("sqlite://")
>>> rows.metadata.create_all(engine)
>>> with Session(engine) as s:
...     _ = s.execute(rows.insert(), [{"id": i, "name": "ab"[i % 2]} for i in range(1, 6)])
...     q, order = select(rows.c.id), (rows.c.name, rows.c.id)
...     first = keyset(s, q, order, None, 2)
...     second = keyset(s, q, order, first.after, 2)
...     last = keyset(s, q, order, second.after, 2)
>>> first.items, first.after, second.items, last.items, last.after
([2, 4], ('a', 4), [1, 3], [5], None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Unpack

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")
Key = tuple[Any, ...]
AnySelect = Select[Unpack[tuple[Any, ...]]]  # a SELECT of any entities or columns


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: its items, and the key of the last one when another page follows (else None)."""

    items: list[T]
    after: Key | None


def keyset(session: Session, stmt: AnySelect, order: Sequence[ColumnElement[Any] | Any],
           after: Sequence[Any] | None, limit: int, *, desc: bool = False, entities: int = 1) -> Page[Any]:
    """The ``limit`` rows of ``stmt`` that follow the key ``after`` in the order ``order`` (a
    unique key, ascending; ``desc``: descending). ``entities``: how many entities ``stmt``
    selects (1: each item is the entity itself; more: each item is a tuple of them)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    cols = list(order)
    if after is not None:
        if len(after) != len(cols):
            raise ValueError(f"the key has {len(after)} parts, the order {len(cols)}")
        left = tuple_(*cols)
        right = tuple_(*(_typed(c, v) for c, v in zip(cols, after, strict=True)))
        stmt = stmt.where(left < right if desc else left > right)
    stmt = stmt.order_by(None).order_by(*(c.desc() for c in cols) if desc else cols)
    rows = session.execute(stmt.add_columns(*cols).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [r[0] if entities == 1 else tuple(r[:entities]) for r in rows]
    return Page(items, tuple(rows[-1][entities:]) if more and rows else None)


def _typed(col: Any, value: Any) -> Any:
    """``value`` bound with the column's type (a UTC datetime goes through ``UTCDateTime``)."""
    from sqlalchemy import literal

    return literal(value, type_=col.type)


def in_memory(items: Iterable[T], key: Callable[[T], Key], after: Sequence[Any] | None, limit: int,
              *, desc: bool = False) -> Page[T]:
    """The same page over a list already in memory (a short list that is not one query: the bundled
    samples, a union of two authorized queries)."""
    ordered = sorted(items, key=key, reverse=desc)
    if after is not None:
        a = tuple(after)
        ordered = [x for x in ordered if (key(x) < a if desc else key(x) > a)]
    page = ordered[:limit]
    return Page(page, key(page[-1]) if len(ordered) > limit and page else None)


@dataclass(frozen=True)
class Listing:
    """A list's query and its unique order, so that the whole list and one page of it are the same
    query (``all`` for the hub's own callers, ``page`` for the API's)."""

    stmt: AnySelect
    order: tuple[Any, ...]
    desc: bool = False
    entities: int = 1

    def page(self, session: Session, after: Sequence[Any] | None, limit: int) -> Page[Any]:
        return keyset(session, self.stmt, self.order, after, limit, desc=self.desc, entities=self.entities)

    def all(self, session: Session) -> list[Any]:
        stmt = self.stmt.order_by(None).order_by(*(c.desc() for c in self.order) if self.desc else self.order)
        if self.entities == 1:
            return list(session.scalars(stmt))
        return [tuple(r) for r in session.execute(stmt)]
