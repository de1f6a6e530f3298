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

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Integer, Select, String, and_, any_, bindparam, func, or_, select, tuple_, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, ColumnElement

T = TypeVar("T")
Key = tuple[Any, ...]
AnySelect = Select[*tuple[Any, ...]]  # a SELECT of any entities or columns


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page: its items, and the key of the last one when another page follows (else None)."""

    items: list[T]
    after: Key | None


def keyset(session: Session, stmt: AnySelect, order: Sequence[ColumnElement[Any] | Any],
           after: Sequence[Any] | None, limit: int, *, desc: bool = False, entities: int = 1,
           any_of: Sequence[ColumnElement[bool]] = ()) -> Page[Any]:
    """The ``limit`` rows of ``stmt`` that follow the key ``after`` in the order ``order`` (a
    unique key, ascending; ``desc``: descending). ``entities``: how many entities ``stmt``
    selects (1: each item is the entity itself; more: each item is a tuple of them).

    ``any_of``: conditions of which a row must meet at least one (``stmt`` holds the others). An
    OR of columns that each have their own index makes the database gather every matching row
    and sort them all; instead each condition is its own ordered index range, cut at the page's
    size, and the page is the first ``limit`` of their union (by the key's last, unique column)."""
    stmt = page_statement(session.get_bind().dialect.name, stmt, order, after, limit, desc=desc, any_of=any_of)
    page = cut(session.execute(stmt).all(), limit, lambda r: tuple(r[entities:]))
    return Page([r[0] if entities == 1 else tuple(r[:entities]) for r in page.items], page.after)


def cut(rows: Sequence[T], limit: int, key: Callable[[T], Key]) -> Page[T]:
    """The page of the first ``limit`` of ``rows`` (a page's statement reads ``limit + 1``: one
    more tells that another page follows), and then the ``key`` of its last row."""
    items = list(rows[:limit])
    return Page(items, key(items[-1]) if len(rows) > limit and items else None)


BOUND_LIMIT = bindparam("limit", type_=Integer)  # a page statement's bound limit (given as limit + 1)


def bound_key(order: Sequence[Any]) -> list[BindParameter[Any]]:
    """A key to continue after as bound parameters ``k0, k1, ...`` typed as ``order``'s columns,
    for a page statement built once per shape (``page_statement``) and run with ``bound_values``."""
    return [bindparam(f"k{i}", type_=c.type) for i, c in enumerate(order)]


def bound_values(after: Sequence[Any] | None, limit: int) -> dict[str, Any]:
    """The values of ``BOUND_LIMIT`` and of ``bound_key``'s parameters for one page."""
    return {"limit": limit + 1, **{f"k{i}": k for i, k in enumerate(after or ())}}


def bound_id_set(col: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """``col IN (ids)`` with the ids as one bound parameter ``name`` (given by ``id_set_value``):
    a JSON array read by ``json_each`` on SQLite, an array on PostgreSQL. An expanding ``IN``
    renders and binds a parameter per id on every run: for a hospital holding 1,000 grants that was
    most of the dataset list's time, the database's own part being under a millisecond."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        cond: ColumnElement[bool] = col == any_(bindparam(name, type_=ARRAY(col.type)))
    else:
        cond = col.in_(select(func.json_each(bindparam(name, type_=String)).table_valued("value").c.value))
    return cond


def id_set_value(ids: Iterable[str], dialect: str) -> Any:
    """The value of a ``bound_id_set`` parameter."""
    return list(ids) if dialect == "postgresql" else json.dumps(list(ids))


def run_page(session: Session, stmt: Any, params: dict[str, Any], after: Sequence[Any] | None, limit: int,
             width: int) -> Page[Any]:
    """A page of rows of a statement built with ``BOUND_LIMIT`` and ``bound_key`` (from ``after``),
    whose last ``width`` columns are the key."""
    rows = session.execute(stmt, {**params, **bound_values(after, limit)}).all()
    return cut(rows, limit, lambda r: tuple(r[-width:]))


def page_statement(dialect: str, stmt: AnySelect, order: Sequence[ColumnElement[Any] | Any],
                   after: Sequence[Any] | None, limit: int | ColumnElement[int], *, desc: bool = False,
                   any_of: Sequence[ColumnElement[bool]] = ()) -> AnySelect:
    """``keyset``'s statement, not run: ``stmt``'s rows after ``after``, ordered, the key's columns
    added at the end, ``limit + 1`` of them (one more tells whether another page follows); to be
    nested in a statement that adds what the page's rows need (``catalog.visible_page``). ``after``
    and ``limit`` may be bound parameters, for a statement built once and run with its values."""
    if isinstance(limit, int) and limit < 1:
        raise ValueError("limit must be at least 1")
    more = limit + 1 if isinstance(limit, int) else limit  # a bound limit is given as limit + 1
    cols = list(order)
    ordering = [c.desc() for c in cols] if desc else cols
    if after is not None:
        if len(after) != len(cols):
            raise ValueError(f"the key has {len(after)} parts, the order {len(cols)}")
        values = [_typed(c, v) for c, v in zip(cols, after, strict=True)]
        if dialect == "postgresql":  # its planner reads a row value as an index range
            left, right = tuple_(*cols), tuple_(*values)
            stmt = stmt.where(left < right if desc else left > right)
        else:
            stmt = stmt.where(_beyond(cols, values, desc))
    if any_of:
        unique = cols[-1]
        ranges = [stmt.where(cond).with_only_columns(unique).order_by(None).order_by(*ordering)
                  .limit(more).subquery() for cond in any_of]
        merged = union(*(select(r.c[0]) for r in ranges)).subquery()
        stmt = stmt.where(unique.in_(select(merged.c[0])))
    return stmt.order_by(None).order_by(*ordering).add_columns(*cols).limit(more)


def _beyond(cols: Sequence[Any], values: Sequence[Any], desc: bool) -> ColumnElement[bool]:
    """``(c1, c2, ...) > (v1, v2, ...)`` (``<`` for ``desc``) as ``c1 >= v1 AND (c1 > v1 OR (c2, ...) >
    (v2, ...))``: the first term is a plain range on the index's key column, which SQLite's planner
    uses in both directions (for a row-value ``<`` it scanned from the filter's start instead;
    PostgreSQL gets the row value, which it walks as one index range, while this form made it sort)."""
    head, value = cols[0], values[0]
    strictly: ColumnElement[bool] = head < value if desc else head > value
    if len(cols) == 1:
        return strictly
    return and_(head <= value if desc else head >= value, or_(strictly, _beyond(cols[1:], values[1:], desc)))


def _typed(col: Any, value: Any) -> Any:
    """``value`` bound with the column's type (a UTC datetime goes through ``UTCDateTime``); a bound
    parameter as it is (a statement built once, its key given at each run)."""
    from sqlalchemy import literal

    return value if isinstance(value, BindParameter) else literal(value, type_=col.type)


def in_memory(items: Iterable[T], key: Callable[[T], Key], after: Sequence[Any] | None, limit: int,
              *, desc: bool = False) -> Page[T]:
    """The same page over a list already in memory (a short list that is not one query: the bundled
    samples, a union of two authorized queries)."""
    ordered = sorted(items, key=key, reverse=desc)
    if after is not None:
        a = tuple(after)
        ordered = [x for x in ordered if (key(x) < a if desc else key(x) > a)]
    return cut(ordered, limit, key)


@dataclass(frozen=True)
class Listing:
    """A list's query and its unique order, so that the whole list and one page of it are the same
    query (``all`` for the hub's own callers, ``page`` for the API's)."""

    stmt: AnySelect
    order: tuple[Any, ...]
    desc: bool = False
    entities: int = 1
    any_of: tuple[ColumnElement[bool], ...] = ()  # at least one holds (see ``keyset``); () = no such condition

    def page(self, session: Session, after: Sequence[Any] | None, limit: int) -> Page[Any]:
        return keyset(session, self.stmt, self.order, after, limit, desc=self.desc, entities=self.entities,
                      any_of=self.any_of)

    def page_rows(self, session: Session, after: Sequence[Any] | None, limit: int,
                  cols: Iterable[ColumnElement[Any]]) -> Page[dict[str, Any]]:
        """``page`` read through Core: each item the dict of ``cols``' values by key, no ORM
        instance built (for a list of 100 items those were most of its time)."""
        cols = list(cols)  # a Core statement: the ORM select's columns replaced, its FROM and WHERE kept
        stmt = select(*cols).select_from(*self.stmt.get_final_froms())
        if self.stmt.whereclause is not None:
            stmt = stmt.where(self.stmt.whereclause)
        page = keyset(session, stmt, self.order, after, limit, desc=self.desc, entities=len(cols), any_of=self.any_of)
        keys = [str(c.key) for c in cols]
        return Page([dict(zip(keys, r, strict=True)) for r in page.items], page.after)

    def all(self, session: Session) -> list[Any]:
        stmt = self.stmt.where(or_(*self.any_of)) if self.any_of else self.stmt
        stmt = stmt.order_by(None).order_by(*(c.desc() for c in self.order) if self.desc else self.order)
        if self.entities == 1:
            return list(session.scalars(stmt))
        return [tuple(r) for r in session.execute(stmt)]


IndexSwap = tuple[str, str, list[str], tuple[str, list[str]]]  # table, new index, columns, (old index, columns)


def swap_indexes(op: Any, swaps: Sequence[IndexSwap], *, downgrade: bool = False) -> None:
    """For the list-index migrations: create each list's key index and drop the index it replaces
    (``downgrade``: the reverse), with Alembic's ``op``."""
    for table, name, cols, (old, old_cols) in (reversed(swaps) if downgrade else swaps):
        if downgrade:
            op.create_index(old, table, old_cols)
            op.drop_index(name, table_name=table)
        else:
            op.create_index(name, table, cols)
            op.drop_index(old, table_name=table)
