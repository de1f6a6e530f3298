"""The access gate of the prediction path: caller, deployment and grant, from short-lived caches.

A prediction must not cost several database queries. The gate keeps three small caches with a
time-to-live (``ttl``, 1 s by default; stale entries are refreshed in the background for up to
another ``ttl``): credential -> ``Principal``, (deployment name, caller organization) -> what it
serves now, and (deployment, caller organization) -> the ``invoke`` grant's limits. A miss
loads from the database in a thread. Revoking a token or a grant, moving an alias or removing a
deployment therefore takes effect in every hub process within ``2 * ttl`` seconds, and at once in
the process that made the change (it calls ``invalidate``). Only positive answers are cached,
plus invalid credentials (a bad token never becomes valid): a new grant or deployment works at
once, and refusals are audited one by one anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import ConsortiumError, Withdrawn
from consortium.governance import credentials, grants
from consortium.governance.names import split_qualified
from consortium.governance.principal import Principal
from consortium.governance.roles import Permission
from consortium.governance.secrets import hash_token
from consortium.serving.hub.deployments import find_deployment, lookup, not_found, resolve_version
from consortium.serving.hub.usage import UsageMeter
from consortium.store.db import transaction
from consortium.store.tables.protection import DatasetWithdrawal, WithdrawnModelVersion

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """What a deployment serves right now."""

    id: str
    name: str
    owner_org_id: str
    model_id: str
    version_id: str
    version: int
    alias: str | None
    warning: str | None = None  # the served version derives from data withdrawn with mode warn


@dataclass(frozen=True)
class Access:
    grant_id: str | None  # None: the owner organization
    limits: dict[str, Any]


class TTLCache(Generic[T]):
    """A dict whose entries (values or errors) expire after ``ttl`` seconds. Thread-safe.

    Between ``ttl`` and ``2 * ttl`` an entry is stale: ``peek`` still returns it but reports it
    once (``stale()``) so that one caller refreshes it in the background while the others go on
    (no thundering herd on the database every ``ttl``). Nothing older than ``2 * ttl`` is used."""

    def __init__(self, ttl: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._d: dict[Any, tuple[float, T | ConsortiumError]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def peek(self, key: Any) -> T | ConsortiumError | None:
        hit = self._d.get(key)
        if hit is None or hit[0] + self.ttl < time.monotonic():
            return None
        return hit[1]

    def fresh_until(self, key: Any) -> float:
        """When ``key``'s entry stops being fresh (``time.monotonic()`` time; 0 when absent)."""
        hit = self._d.get(key)
        return 0.0 if hit is None else hit[0]

    def stale(self, key: Any) -> bool:
        """True (once per refresh) when ``key`` is past ``ttl``: the caller should refresh it."""
        hit = self._d.get(key)
        if hit is None or hit[0] >= time.monotonic():
            return False
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def put(self, key: Any, value: T | ConsortiumError) -> None:
        with self._lock:
            if len(self._d) >= self.max_entries:
                self._d.clear()
            self._d[key] = (time.monotonic() + self.ttl, value)
            self._refreshing.discard(key)

    def done(self, key: Any) -> None:
        """A refresh failed: let the next caller try again."""
        with self._lock:
            self._refreshing.discard(key)

    def drop(self, match: Callable[[Any], bool] | None = None) -> None:
        with self._lock:
            if match is None:
                self._d.clear()
            else:
                for k in [k for k in self._d if match(k)]:
                    del self._d[k]


def _unwrap(v: T | ConsortiumError) -> T:
    if isinstance(v, ConsortiumError):
        raise v
    return v


class Gate:
    """Resolves who calls which deployment with what quota; ``*_cached`` never touch the database
    (they return None on a miss), ``load_*`` do (call them in a thread)."""

    def __init__(self, factory: sessionmaker[Session], meter: UsageMeter, ttl: float = 1.0) -> None:
        self._factory = factory
        self._meter = meter
        self.ttl = ttl
        self.principals: TTLCache[Principal] = TTLCache(ttl)
        self.targets: TTLCache[Target] = TTLCache(ttl)
        self.access: TTLCache[Access] = TTLCache(ttl)

    # -- caller
    @staticmethod
    def credential_key(kind: str, secret: str, org: str | None) -> tuple[str, str, str | None]:
        return kind, hash_token(secret), org

    def principal_cached(self, key: tuple[str, str, str | None]) -> Principal | None:
        hit = self.principals.peek(key)
        return None if hit is None else _unwrap(hit)

    def load_principal(self, key: tuple[str, str, str | None], secret: str) -> Principal:
        kind, _, org = key
        try:
            with transaction(self._factory) as s:
                p = (credentials.resolve_token(s, secret) if kind == "token"
                     else credentials.resolve_session(s, secret, org))
        except ConsortiumError as e:
            self.principals.put(key, e)
            raise
        self.principals.put(key, p)
        return p

    # -- deployment
    @staticmethod
    def target_key(name: str, p: Principal | None) -> tuple[str, str | None]:
        """A bare name means a different deployment to each organization (its own first)."""
        return name, p.org_id if p is not None else None

    def target_cached(self, name: str, p: Principal | None = None) -> Target | None:
        hit = self.targets.peek(self.target_key(name, p))
        return None if hit is None else _unwrap(hit)

    def load_target(self, name: str, p: Principal | None = None) -> Target:
        """What ``name`` (id, ``org~name``, or a bare name resolved for ``p``) serves now."""
        with self._factory() as s:
            d = lookup(s, p, name) if p is not None else find_deployment(s, name)
            if d is None:
                raise not_found(name)
            v = resolve_version(s, d)
            warning = withdrawal_warning(s, d.name, v.id)  # a stopped one raises, and is not cached
            t = Target(d.id, d.name, d.org_id, d.model_id, v.id, v.version, d.alias, warning)
        self.targets.put(self.target_key(name, p), t)
        return t

    # -- grant and quota base
    def access_cached(self, t: Target, p: Principal) -> Access | None:
        if p.org_id == t.owner_org_id:
            return Access(None, {})
        hit = self.access.peek((t.id, p.org_id))
        return None if hit is None else _unwrap(hit)

    def load_access(self, t: Target, p: Principal, ref: str | None = None) -> Access:
        """The caller's grant (or project) on ``t``; else the same 404 as an unknown ``ref``."""
        key = (t.id, p.org_id)
        with self._factory() as s:
            g = grants.find_grant(s, p, "deployment", t.id, Permission.invoke)
            if g is None:
                project_access = _project_member_access(s, t, p)
                if project_access is not None:
                    self.access.put(key, project_access)
                    return project_access
                raise not_found(ref or t.name)
            limits = dict(g.limits or {})
            if not limits and g.grantee_project_id:  # a project grant: the project's quota for this member
                from consortium.governance.projects import quota_for

                limits = quota_for(s, g.grantee_project_id, p.org_id)
            a = Access(g.id, limits)
        self.access.put(key, a)
        return a

    def invalidate(self, deployment: str | None = None) -> None:
        """Forget cached deployments (one by name, or all) and grants, e.g. after an alias moved."""
        if deployment is None:
            self.targets.drop()
        else:  # however it was named: bare, org~name, org/name
            self.targets.drop(lambda k: split_qualified(k[0])[1] == deployment or k[0].startswith("dep_"))
        self.access.drop()


def withdrawal_warning(session: Session, name: str, version_id: str) -> str | None:
    """Raise ``Withdrawn`` when the version derives from a dataset version its owner withdrew with
    ``mode: stop`` (``consortium.data.withdrawal``); for ``warn``, the warning the deployment's owner
    gets with each answer (the ``Consortium-Warning`` header); None when nothing marked it."""
    rows = session.execute(select(WithdrawnModelVersion.mode, DatasetWithdrawal)
                           .join(DatasetWithdrawal, WithdrawnModelVersion.withdrawal_id == DatasetWithdrawal.id)
                           .where(WithdrawnModelVersion.version_id == version_id)).all()
    for mode, w in rows:
        if mode == "stop":
            raise Withdrawn(f"deployment {name!r} is stopped: the model version it serves derives from {w.dataset} "
                            f"version {w.version}, which its owner withdrew ({w.id})",
                            hint="its owner can retrain without it (`consortium withdrawals retrain`) and deploy "
                                 "the new version")
    if not rows:
        return None
    w = rows[0][1]
    return (f"the served model version derives from {w.dataset} version {w.version}, withdrawn by its owner "
            f"({w.id}); retrain without it: consortium withdrawals retrain")


def _project_member_access(session: Any, t: Target, p: Principal) -> Access | None:
    """A deployment of a model that lives in a project is invocable by every active member of that
    project whose terms include ``invoke``, under the project's quota (per-organization override)."""
    from consortium.governance.projects import active_project_ids, quota_for
    from consortium.store.tables.projects import Project
    from consortium.store.tables.registry import RegisteredModel

    model = session.get(RegisteredModel, t.model_id)
    if model is None or not model.project_id or model.project_id not in active_project_ids(session, p.org_id):
        return None
    prj = session.get(Project, model.project_id)
    if prj is None or "invoke" not in (prj.terms or []):
        return None
    return Access(f"project:{prj.id}", quota_for(session, prj.id, p.org_id))  # refreshed like a grant
