"""The dataset catalog: names (``org/name``), lookup, visibility across organizations, and views.

A dataset belongs to one organization and is named ``org/name``; its versions are numbered from 1
and never change. Another organization sees a dataset only through a grant (``metadata``,
``compute`` or ``download``); without one, the dataset does not exist for it (``NotFound``).

>>> parse_ref("st-marys-hospital/breast-cancer")
('st-marys-hospital', 'breast-cancer')
>>> parse_ref("digits", default_org="northgate-lab")
('northgate-lab', 'digits')
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import and_, bindparam, case, false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from consortium.errors import InvalidInput, NotFound
from consortium.governance import grants
from consortium.governance.identity import org_by_id
from consortium.governance.names import NameRule
from consortium.governance.principal import Principal
from consortium.governance.roles import Permission, Role
from consortium.store.paging import (
    BOUND_LIMIT,
    Key,
    Listing,
    Page,
    bound_id_set,
    bound_key,
    id_set_value,
    page_statement,
    run_page,
)
from consortium.store.tables.data import Dataset, DatasetVersion
from consortium.store.tables.identity import Organization

RTYPE = "dataset"
NOT_FOUND_HINT = "list the datasets you can see with `consortium datasets list`"
DATASET_NAME = NameRule("dataset name", re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"),
                        "use 1-64 lowercase letters, digits, '.', '_' and '-', starting and ending with a "
                        "letter or digit")
NAME_RE = DATASET_NAME.regex
check_name = DATASET_NAME.check


def parse_ref(ref: str, default_org: str | None = None) -> tuple[str, str]:
    """``org/name`` -> (org, name); a bare ``name`` uses ``default_org``."""
    parts = ref.strip().split("/")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    if len(parts) == 1 and parts[0] and default_org:
        return default_org, parts[0]
    raise InvalidInput(f"dataset reference {ref!r} is not valid", hint="name a dataset as ORG/NAME")


def find(session: Session, org_name: str, name: str) -> Dataset | None:
    q = (select(Dataset).join(Organization, Organization.id == Dataset.org_id)
         .where(Organization.name == org_name, Dataset.name == name))
    return session.scalar(q)


def resolve(session: Session, ref: str) -> tuple[str, str] | None:
    """Resolver for grants: a dataset id or ``org/name`` -> (id, owner org id)."""
    ds = session.get(Dataset, ref) if ref.startswith("ds_") else None
    if ds is None and "/" in ref:
        org, name = parse_ref(ref)
        ds = find(session, org, name)
    return (ds.id, ds.org_id) if ds is not None else None


def full_name(session: Session, ds: Dataset) -> str:
    return f"{org_by_id(session, ds.org_id).name}/{ds.name}"


def describe(session: Session, dataset_id: str) -> str:
    ds = session.get(Dataset, dataset_id)
    return full_name(session, ds) if ds is not None else dataset_id


def visible(session: Session, p: Principal, org_name: str, name: str,
            permission: Permission = Permission.metadata, role: Role = Role.viewer) -> Dataset:
    """The dataset if the caller's organization owns it (at ``role``) or holds ``permission`` on it."""
    ds = find(session, org_name, name)
    if ds is None:
        raise NotFound(f"dataset {org_name}/{name} not found", hint=NOT_FOUND_HINT)
    authorize(session, p, ds, permission, role)
    return ds


def authorize(session: Session, p: Principal, ds: Dataset, permission: Permission,
              role: Role = Role.viewer) -> None:
    grants.authorize(session, p, RTYPE, ds.id, ds.org_id, permission, role,
                     what=f"dataset {full_name(session, ds)}", hint=NOT_FOUND_HINT)


def may_read_rows(session: Session, p: Principal, ds: Dataset) -> bool:
    """Rows go to the owner organization and to ``download`` grantees only."""
    return ds.org_id == p.org_id or grants.has_grant(session, p, RTYPE, ds.id, Permission.download)


def version(session: Session, ds: Dataset, number: int | str | None = None) -> DatasetVersion:
    """Version ``number`` of a dataset; ``None`` or ``"latest"`` gives the newest."""
    q = select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
    if number in (None, "latest"):
        v = session.scalar(q.order_by(DatasetVersion.version.desc()).limit(1))
    else:
        try:
            n = int(number)
        except ValueError:
            raise InvalidInput(f"version {number!r} is not a number",
                               hint="use 1, 2, ... or latest") from None
        v = session.scalar(q.where(DatasetVersion.version == n))
    if v is None:
        raise NotFound(f"dataset {full_name(session, ds)} has no version {number or '(none yet)'}",
                       hint="upload one with `consortium datasets upload`")
    return v


def versions(session: Session, ds: Dataset) -> list[DatasetVersion]:
    return versions_listing(ds).all(session)


def versions_listing(ds: Dataset) -> Listing:
    return Listing(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id),
                   (DatasetVersion.version,))  # unique per dataset


def next_version(session: Session, ds: Dataset) -> int:
    """The number the next upload gets (recorded on the dataset): never one a deleted version had."""
    top = session.scalar(select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == ds.id))
    ds.last_version = max(int(top or 0), ds.last_version or 0) + 1
    return ds.last_version


def list_visible(session: Session, p: Principal, scope: str = "all") -> list[Dataset]:
    """Datasets of the caller's organization (``own``), granted to it (``shared``), or both."""
    return visible_listing(session, p, scope).all(session)


def visible_listing(session: Session, p: Principal, scope: str = "all") -> Listing:
    """``list_visible`` as one query: the caller's own datasets first, then those shared with
    it, each by name."""
    where, shared_last = _visible_where(session, p, scope, Dataset.id, Dataset.org_id)
    return Listing(select(Dataset).where(where), (shared_last, Dataset.name, Dataset.id))


def _visible_where(session: Session, p: Principal, scope: str, id_col: Any,
                   org_col: Any) -> tuple[ColumnElement[bool], ColumnElement[int]]:
    """What the caller sees (its own datasets, those granted to it, or both), and the first part
    of the list's key (0: own, 1: shared)."""
    if scope not in ("own", "shared", "all"):
        raise InvalidInput(f"scope must be own, shared or all; got {scope!r}")
    ids = grants.received_ids(session, p, RTYPE, Permission.metadata) if scope != "own" else set()
    return _where(scope, bool(ids), org_col == p.org_id, id_col.in_(ids), org_col != p.org_id)


def _where(scope: str, shared: bool, own: ColumnElement[bool], granted: ColumnElement[bool],
           other: ColumnElement[bool]) -> tuple[ColumnElement[bool], ColumnElement[int]]:
    conds = [own] if scope in ("own", "all") else []
    if scope in ("shared", "all") and shared:  # own datasets granted to a project: listed once, as own
        conds.append(and_(granted, other))
    return (or_(*conds) if conds else false()), case((own, 0), else_=1)


@functools.cache
def _page_stmt(scope: str, shared: bool, after: bool, dialect: str) -> Any:
    """``visible_page``'s statement for one shape (scope, any grant, a key to continue after),
    built once with bound parameters: org, ids, limit, k0-k2."""
    d, v, o = Dataset.__table__.c, DatasetVersion.__table__.c, Organization.__table__.c
    org = bindparam("org", type_=d.org_id.type)
    where, shared_last = _where(scope, shared, d.org_id == org, bound_id_set(d.id, "ids", dialect), d.org_id != org)
    order = (shared_last, d.name, d.id)
    inner = page_statement(dialect, select(d.org_id, d.description, d.created_at).where(where), order,
                           bound_key(order) if after else None, BOUND_LIMIT).subquery()
    ic = inner.c
    page_key = (ic[3], ic.name, ic.id)  # the added key columns: shared_last, name, id
    n = select(func.count()).where(v.dataset_id == ic.id).scalar_subquery()
    top = select(func.max(v.version)).where(v.dataset_id == ic.id).scalar_subquery()
    return (select(ic.id, ic.name, ic.description, ic.created_at, ic.org_id, o.name, n, top, *page_key)
            .join_from(inner, Organization.__table__, o.id == ic.org_id).order_by(*page_key))


def visible_page(session: Session, p: Principal, scope: str, after: Key | None, limit: int) -> Page[dict[str, Any]]:
    """A page of ``visible_listing`` as the API shows it (``dataset_views``), in one Core statement
    built once per shape: the page's datasets (the same keyset page, so the same cursors), each with
    its organization's name and its versions' count and newest number, read for the page's rows only."""
    if scope not in ("own", "shared", "all"):
        raise InvalidInput(f"scope must be own, shared or all; got {scope!r}")
    held = grants.received_permissions(session, p, RTYPE, _STRONGEST_FIRST) if scope != "own" else {}
    dialect = session.get_bind().dialect.name
    stmt = _page_stmt(scope, bool(held), after is not None, dialect)
    page = run_page(session, stmt, {"org": p.org_id, "ids": id_set_value(held, dialect)}, after, limit, 3)
    items = [{"id": r[0], "org": r[5], "name": r[1], "full_name": f"{r[5]}/{r[1]}", "description": r[2],
              "created_at": r[3], "latest_version": r[7], "versions": r[6],
              "access": "owner" if r[4] == p.org_id else held[r[0]].value} for r in page.items]
    return Page(items, page.after)


def version_view(v: DatasetVersion) -> dict[str, Any]:
    return {"id": v.id, "version": v.version, "format": v.format, "kind": v.kind, "filename": v.filename,
            "size_bytes": v.size_bytes, "checksum": v.checksum, "rows": v.row_count, "target": v.target,
            "schema": v.schema, "created_at": v.created_at}


def dataset_view(session: Session, p: Principal, ds: Dataset, with_versions: bool = False) -> dict[str, Any]:
    vs = versions(session, ds)
    out: dict[str, Any] = {
        "id": ds.id, "org": org_by_id(session, ds.org_id).name, "name": ds.name,
        "full_name": full_name(session, ds), "description": ds.description, "created_at": ds.created_at,
        "latest_version": vs[-1].version if vs else None, "versions": len(vs),
        "access": "owner" if ds.org_id == p.org_id else _granted(session, p, ds),
    }
    if with_versions:
        out["version_list"] = [version_view(v) for v in vs]
    return out


def dataset_views(session: Session, p: Principal, dss: list[Dataset]) -> list[dict[str, Any]]:
    """``dataset_view`` of each dataset of a page, with the versions counted in one grouped query
    and the organizations loaded in one (not a versions query and lookups per dataset)."""
    ids = [ds.id for ds in dss]
    counts = {dsid: (n, top) for dsid, n, top in session.execute(
        select(DatasetVersion.dataset_id, func.count(), func.max(DatasetVersion.version))
        .where(DatasetVersion.dataset_id.in_(ids)).group_by(DatasetVersion.dataset_id))} if ids else {}
    orgs = {o.id: o.name for o in session.scalars(select(Organization).where(
        Organization.id.in_({ds.org_id for ds in dss})))} if dss else {}
    out = []
    for ds in dss:
        n, top = counts.get(ds.id, (0, None))
        org = orgs[ds.org_id]
        out.append({"id": ds.id, "org": org, "name": ds.name, "full_name": f"{org}/{ds.name}",
                    "description": ds.description, "created_at": ds.created_at, "latest_version": top,
                    "versions": n, "access": "owner" if ds.org_id == p.org_id else _granted(session, p, ds)})
    return out


def _granted(session: Session, p: Principal, ds: Dataset) -> str:
    return _granted_id(session, p, ds.id)


_STRONGEST_FIRST = (Permission.download, Permission.compute, Permission.metadata)


def _granted_id(session: Session, p: Principal, dataset_id: str) -> str:
    for perm in _STRONGEST_FIRST:
        if grants.has_grant(session, p, RTYPE, dataset_id, perm):
            return perm.value
    return "none"
