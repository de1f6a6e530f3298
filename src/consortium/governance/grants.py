"""Grants: one mechanism by which an organization lets another (or a project's members) use a resource.

Each stage describes its resource type (``dataset``, ``deployment``, ...) as a ``ResourceType``
with a resolver that finds a resource by id or ``org/name`` and tells which organization owns it;
``Services.start`` gathers them into ``Services.resource_types`` (a ``ResourceTypes``). Access checks
go through ``authorize``, which hides resources the caller holds no grant on (``NotFound``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound
from consortium.governance import control_cache
from consortium.governance.identity import org_by_id, org_by_name
from consortium.governance.names import split_qualified
from consortium.governance.principal import Principal
from consortium.governance.roles import IMPLIES, Permission, Role
from consortium.store.paging import Key, Listing, Page
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import Organization

Resolver = Callable[[Session, str], "tuple[str, str] | None"]  # ref -> (resource id, owner org id)


@dataclass(frozen=True)
class ResourceType:
    name: str
    resolve: Resolver
    permissions: frozenset[Permission]
    describe: Callable[[Session, str], str] = field(default=lambda s, rid: rid)
    # the hint of the stage's own "not found": a hidden resource must get the very same answer
    hint: str | None = None
    # the resource's table (columns id, org_id and name: described as org/name), so that a page
    # of grants reads its resources' names in one query (``grant_page``)
    table: Any = None


class ResourceTypes:
    """The resource types grants can name, by name: built once by ``Services.start``.

    >>> from consortium.governance.roles import Permission
    >>> types = ResourceTypes([ResourceType("thing", lambda s, ref: None, frozenset({Permission.metadata}))])
    >>> types.names(), types.get("thing").name, types.find("other")
    (['thing'], 'thing', None)
    """

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._by_name = {rt.name: rt for rt in types}

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def find(self, name: str) -> ResourceType | None:
        return self._by_name.get(name)

    def get(self, name: str) -> ResourceType:
        """The type named ``name``; ``InvalidInput`` listing the known ones otherwise."""
        rt = self._by_name.get(name)
        if rt is None:
            raise InvalidInput(f"unknown resource type {name!r}",
                               hint=f"use one of: {', '.join(self.names()) or '(none yet)'}")
        return rt

    def describe(self, session: Session, name: str, resource_id: str) -> str:
        """How a resource reads in a listing (``org/name``); its id when the type is unknown."""
        rt = self._by_name.get(name)
        return rt.describe(session, resource_id) if rt else resource_id


def projects_of(session: Session, org_id: str) -> list[str]:
    """The projects ``org_id`` is an active member of (a grant to one of them reaches it too, its
    audit list shows their events): cached with the grants, dropped by any membership change."""
    from consortium.governance.projects import active_project_ids  # projects names through grants

    return control_cache.cached(session, "projects", org_id, lambda: active_project_ids(session, org_id))


@dataclass(frozen=True)
class _Received:
    """What an access check needs of an unrevoked grant an organization received (cached)."""

    id: str
    resource_type: str
    resource_id: str
    permission: Permission
    expires_at: datetime | None


def _received(session: Session, org_id: str) -> dict[tuple[str, str], list[_Received]]:
    """The unrevoked grants to ``org_id`` or a project it is active in, by (type, resource id): one
    query, none while the hub's cache holds them (``control_cache``); expiry is checked at use."""
    def load() -> dict[tuple[str, str], list[_Received]]:
        projects = projects_of(session, org_id)
        who = Grant.grantee_org_id == org_id
        if projects:
            who = or_(who, Grant.grantee_project_id.in_(projects))
        out: dict[tuple[str, str], list[_Received]] = {}
        for row in session.execute(select(Grant.id, Grant.resource_type, Grant.resource_id, Grant.permission,
                                          Grant.expires_at).where(who, Grant.revoked_at.is_(None))):
            out.setdefault((row.resource_type, row.resource_id), []).append(
                _Received(row.id, row.resource_type, row.resource_id, Permission(row.permission), row.expires_at))
        return out

    return control_cache.cached(session, "received", org_id, load)


def active_grants(session: Session, resource_type_name: str, resource_id: str, org_id: str) -> list[Grant]:
    now = utcnow()
    out = []
    for r in _received(session, org_id).get((resource_type_name, resource_id), ()):
        if r.expires_at is None or r.expires_at > now:
            g = session.get(Grant, r.id)
            if g is not None and g.revoked_at is None:
                out.append(g)
    return out


def has_grant(session: Session, p: Principal, rtype: str, resource_id: str, permission: Permission) -> bool:
    """Whether ``find_grant`` would find one, without loading it: the cached received grants
    answer alone, unless this transaction itself changed access (``control_cache.changed_here``:
    then each candidate is read again, as ``find_grant`` does)."""
    if control_cache.changed_here(session):
        return find_grant(session, p, rtype, resource_id, permission) is not None
    now = utcnow()
    return any(permission in IMPLIES[r.permission] and (r.expires_at is None or r.expires_at > now)
               for r in _received(session, p.org_id).get((rtype, resource_id), ()))


def received_ids(session: Session, p: Principal, rtype: str, permission: Permission) -> set[str]:
    """The ids of the ``rtype`` resources the caller's organization holds ``permission`` on
    through a grant (``has_grant`` of each received one), from the cached received grants."""
    return set(received_permissions(session, p, rtype, (permission,)))


def received_permissions(session: Session, p: Principal, rtype: str,
                         strongest_first: tuple[Permission, ...]) -> dict[str, Permission]:
    """For each ``rtype`` resource granted to the caller's organization, the first permission of
    ``strongest_first`` it holds: ``has_grant`` of each, in one pass over the cached received
    grants (one clock read, one check of the transaction's own changes, not one per grant)."""
    if control_cache.changed_here(session):
        out: dict[str, Permission] = {}
        for (t, rid) in _received(session, p.org_id):
            if t == rtype:
                first = next((perm for perm in strongest_first if has_grant(session, p, rtype, rid, perm)), None)
                if first is not None:
                    out[rid] = first
        return out
    now = utcnow()
    held, until = control_cache.cached(session, "received_permissions", (p.org_id, rtype, strongest_first),
                                       lambda: _strongest_held(session, p.org_id, rtype, strongest_first, now))
    if until is not None and now >= until:  # a grant expired since: not from the cache
        held = _strongest_held(session, p.org_id, rtype, strongest_first, now)[0]
    return held  # shared with the cache: not to be modified


def _strongest_held(session: Session, org_id: str, rtype: str, strongest_first: tuple[Permission, ...],
                    now: datetime) -> tuple[dict[str, Permission], datetime | None]:
    """``received_permissions`` at ``now``, and until when it holds (the next expiry), to be cached."""
    out: dict[str, Permission] = {}
    until: datetime | None = None
    for (t, rid), rs in _received(session, org_id).items():
        if t != rtype:
            continue
        live = [r for r in rs if r.expires_at is None or r.expires_at > now]
        held = next((perm for perm in strongest_first if any(perm in IMPLIES[r.permission] for r in live)), None)
        if held is not None:
            out[rid] = held
        for r in live:
            if r.expires_at is not None and (until is None or r.expires_at < until):
                until = r.expires_at
    return out, until


def find_grant(session: Session, p: Principal, rtype: str, resource_id: str,
               permission: Permission) -> Grant | None:
    now = utcnow()
    for r in _received(session, p.org_id).get((rtype, resource_id), ()):
        if permission in IMPLIES[r.permission] and (r.expires_at is None or r.expires_at > now):
            g = session.get(Grant, r.id)
            if g is not None and g.revoked_at is None:  # revoked in this very transaction
                return g
    return None


def authorize(session: Session, p: Principal, rtype: str, resource_id: str, owner_org_id: str,
              permission: Permission, role: Role = Role.viewer, what: str | None = None,
              hint: str | None = None) -> Grant | None:
    """Allow the owner organization (at ``role``) or a grantee holding ``permission``; else 404,
    with ``hint``: the stage's own "not found" hint (``ResourceType.hint``), so that a hidden
    resource gets the very answer of a missing one.

    Returns the grant that allowed the access (None for the owner), e.g. for its quota limits."""
    label = what or f"{rtype} {resource_id!r}"
    if owner_org_id == p.org_id:
        p.require(role)
        return None
    grant = find_grant(session, p, rtype, resource_id, permission)
    if grant is None:
        # Hide existence unless some weaker grant already reveals it.
        if permission != Permission.metadata and has_grant(session, p, rtype, resource_id,
                                                           Permission.metadata):
            from consortium.errors import PermissionDenied

            raise PermissionDenied(f"your organization may see {label} but holds no "
                                   f"{permission.value!r} grant on it",
                                   hint="ask its owner for a grant")
        raise NotFound(f"{label} not found", hint=hint)
    p.require(role)
    return grant


def create_grant(session: Session, p: Principal, rt: ResourceType, resource_ref: str, permission: str,
                 grantee_org: str | None = None, grantee_project_id: str | None = None,
                 expires_at: datetime | None = None, limits: dict[str, Any] | None = None) -> Grant:
    """A grant on the caller's resource ``resource_ref`` of type ``rt`` (``Services.resource_types``)."""
    rtype = rt.name
    try:
        perm = Permission(permission)
    except ValueError:
        raise InvalidInput(f"unknown permission {permission!r}",
                           hint=f"use one of: {', '.join(p.value for p in rt.permissions)}") from None
    if perm not in rt.permissions:
        raise InvalidInput(f"a {rtype} cannot be granted {permission!r}",
                           hint=f"use one of: {', '.join(sorted(x.value for x in rt.permissions))}")
    found = rt.resolve(session, resource_ref)
    if (found is None or found[1] != p.org_id) and split_qualified(resource_ref, rtype)[0] is None:
        found = rt.resolve(session, f"{p.org_name}/{resource_ref}")  # a bare name: one of the caller's own
    if found is not None and found[1] != p.org_id and any(
            has_grant(session, p, rtype, found[0], perm) for perm in rt.permissions):
        from consortium.errors import PermissionDenied  # a grantee sees it, so 403 rather than 404

        raise PermissionDenied(f"only the organization that owns {rtype} {resource_ref!r} grants access to it")
    if found is None or found[1] != p.org_id:
        raise NotFound(f"{rtype} {resource_ref!r} not found in {p.org_name}")
    p.require(Role.admin, "granting access")
    if (grantee_org is None) == (grantee_project_id is None):
        raise InvalidInput("give exactly one grantee: an organization or a project")
    grantee_id = None
    if grantee_org is not None:
        grantee_id = org_by_name(session, grantee_org).id
        if grantee_id == p.org_id:
            raise InvalidInput("an organization does not need a grant on its own resources")
    if grantee_project_id is not None:
        from consortium.governance.projects import check_grant

        check_grant(session, p, grantee_project_id, perm.value)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at is in the past")
    resource_id = found[0]
    dup = session.scalar(select(Grant).where(
        Grant.resource_type == rtype, Grant.resource_id == resource_id, Grant.permission == perm.value,
        Grant.grantee_org_id == grantee_id if grantee_id else Grant.grantee_project_id == grantee_project_id,
        Grant.revoked_at.is_(None), or_(Grant.expires_at.is_(None), Grant.expires_at > utcnow())))
    if dup is not None:
        raise Conflict(f"this grant already exists ({dup.id})", hint="revoke it first to change it")
    g = Grant(id=new_id("grt"), resource_type=rtype, resource_id=resource_id, owner_org_id=p.org_id,
              grantee_org_id=grantee_id, grantee_project_id=grantee_project_id, permission=perm.value,
              limits=limits or {}, created_by=p.user_id, expires_at=expires_at)
    session.add(g)
    session.flush()
    return g


def get_grant(session: Session, p: Principal, grant_id: str) -> Grant:
    """A grant is visible to its owner organization and to its grantee organization."""
    g = session.get(Grant, grant_id)
    if g is None or p.org_id not in (g.owner_org_id, g.grantee_org_id):
        raise NotFound(f"grant {grant_id!r} not found")
    return g


def revoke_grant(session: Session, p: Principal, grant_id: str) -> Grant:
    g = get_grant(session, p, grant_id)
    if g.owner_org_id != p.org_id:
        from consortium.errors import PermissionDenied

        raise PermissionDenied("only the owner organization can revoke a grant")
    p.require(Role.admin, "revoking grants")
    if g.revoked_at is None:
        g.revoked_at = utcnow()
    return g


def list_grants(session: Session, p: Principal, direction: str = "all") -> list[Grant]:
    return grants_listing(session, p, direction).all(session)


def grants_listing(session: Session, p: Principal, direction: str = "all") -> Listing:
    """Grants the caller's organization gave, received (itself or through its projects), or both,
    oldest first."""
    projects = projects_of(session, p.org_id)
    given = (Grant.owner_org_id == p.org_id,)
    received = (Grant.grantee_org_id == p.org_id, *(Grant.grantee_project_id == pid for pid in sorted(projects)))
    sides = {"given": given, "received": received, "all": given + received}.get(direction)
    if sides is None:
        raise InvalidInput(f"direction must be given, received or all; got {direction!r}")
    return Listing(select(Grant), (Grant.created_at, Grant.id), any_of=sides)  # one index range per side


def grant_page(session: Session, p: Principal, direction: str, types: ResourceTypes, after: Key | None,
               limit: int) -> Page[dict[str, Any]]:
    """A page of ``grants_listing`` as ``grant_view`` shows each grant, read through Core: the
    page's rows (the listing's index ranges, so the same order and cursors), then each resource
    type's names and the organizations' names in one IN query each. Through the ORM a page of 100
    grants built some 300 instances: most of the list's time with 1,000 grants to the caller."""
    page = grants_listing(session, p, direction).page_rows(session, after, limit, Grant.__table__.c)
    rows = page.items
    names: dict[tuple[str, str], str] = {}
    org_ids = {r["owner_org_id"] for r in rows} | {r["grantee_org_id"] for r in rows if r["grantee_org_id"]}
    by_type: dict[str, set[str]] = {}
    for r in rows:
        by_type.setdefault(r["resource_type"], set()).add(r["resource_id"])
    for name, ids in by_type.items():
        rt = types.find(name)
        if rt is not None and rt.table is not None:  # described as org/name
            t = rt.table.__table__.c
            names.update(((name, rid), f"{org}/{n}") for rid, n, org in session.execute(
                select(t.id, t.name, Organization.name).join(Organization, Organization.id == t.org_id)
                .where(t.id.in_(ids))))
    orgs = {i: n for i, n in session.execute(select(Organization.id, Organization.name)
                                             .where(Organization.id.in_(org_ids)))} if org_ids else {}
    now = utcnow()
    items = [_view(r, names.get((r["resource_type"], r["resource_id"]))
                   or types.describe(session, r["resource_type"], r["resource_id"]),
                   orgs[r["owner_org_id"]], orgs[r["grantee_org_id"]] if r["grantee_org_id"] else None, now)
             for r in rows]
    return Page(items, page.after)


def grant_view(session: Session, g: Grant, types: ResourceTypes) -> dict[str, Any]:
    row = {c.key: getattr(g, c.key) for c in Grant.__table__.c}
    return _view(row, types.describe(session, g.resource_type, g.resource_id), org_by_id(session, g.owner_org_id).name,
                 org_by_id(session, g.grantee_org_id).name if g.grantee_org_id else None, utcnow())


def _view(g: dict[str, Any], resource: str, owner_org: str, grantee_org: str | None, now: datetime) -> dict[str, Any]:
    state = ("revoked" if g["revoked_at"] else
             "expired" if g["expires_at"] is not None and g["expires_at"] <= now else "active")
    return {
        "id": g["id"], "resource_type": g["resource_type"], "resource_id": g["resource_id"], "resource": resource,
        "owner_org": owner_org, "grantee_org": grantee_org, "grantee_project_id": g["grantee_project_id"],
        "permission": g["permission"], "limits": g["limits"], "created_at": g["created_at"],
        "expires_at": g["expires_at"], "revoked_at": g["revoked_at"], "state": state,
    }
