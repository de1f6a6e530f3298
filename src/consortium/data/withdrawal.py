"""Withdrawal of a dataset version by its owner (a contract's end, or a data subject's erasure
request under GDPR Art. 17), carried through lineage to every model derived from it.

``withdraw`` does, in the caller's transaction:

1. refuse (409) while a queued or running job reads the version, as deletion does;
2. end the dataset's grants (``end_grants``; the owner may keep them for its other versions);
3. mark every model version derived from it (``derived_versions``): versions trained by a job
   that read it (centralized or federated, as ``Job.resolved`` recorded), versions whose lineage
   names it, and, to a fixed point, versions whose lineage names a marked version as their base
   (``base_versions``: models fine-tuned or distilled from them);
4. record the withdrawal (``DatasetWithdrawal``: number, checksum, size, rows, reason, effects),
   which outlives the version, as the audit does;
5. delete the version's row and, once the transaction has committed, its blob
   (``deletion.delete``: the same crash-safe order, an orphan blob at worst, swept later).

Deployments of a marked version follow the withdrawal's ``mode``: ``stop`` (the serving gate
answers 451 within its cache's life, about two seconds) or ``warn`` (they serve on, and their
owner sees the warning on the deployment and in its audit log). ``effects`` lists them.

>>> with transaction(svc.session_factory) as s:                                   # doctest: +SKIP
...     w = withdraw(s, svc.blobs, owner, catalog.find(s, "st-marys-hospital", "bc"), 3, mode="warn")
>>> [m["model"] for m in w.effects["models"]]                                     # doctest: +SKIP
['riverside-clinic/bc-fed']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from consortium.data import catalog, deletion
from consortium.data.catalog import Dataset
from consortium.errors import InvalidInput, NotFound
from consortium.governance import grants
from consortium.governance.audit import EventDraft
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id
from consortium.store.tables.grants import Grant
from consortium.store.tables.identity import Organization
from consortium.store.tables.jobs import Job
from consortium.store.tables.protection import DatasetWithdrawal, WithdrawnModelVersion
from consortium.store.tables.registry import Deployment, ModelAlias, ModelVersion, RegisteredModel

MODES = ("stop", "warn")
BASE_KEY = "base_versions"  # lineage key: model version ids a version was fine-tuned or distilled from


@dataclass(frozen=True)
class VersionRow:
    """What the walk reads of a model version (not its signature, metrics or statistics)."""

    id: str
    model_id: str
    version: int
    lineage: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Derived:
    version: VersionRow
    via: str  # the job that read the data, "lineage", or the marked base version


def jobs_that_read(session: Session, dataset_id: str, version: int) -> list[Job]:
    """Every job (any state) admitted to read ``version`` of the dataset (``Job.resolved``)."""
    q = select(Job).where(cast(Job.resolved, String).like(f"%{dataset_id}%"))
    return [j for j in session.scalars(q)
            if any(d.get("dataset_id") == dataset_id and d.get("version") == version
                   for d in (j.resolved or {}).get("datasets") or [])]


def derived_versions(session: Session, ds: Dataset, version: int) -> list[Derived]:
    """The model versions derived from ``version`` of ``ds``, following lineage to a fixed point."""
    name = catalog.full_name(session, ds)
    jobs = {j.id for j in jobs_that_read(session, ds.id, version)}
    found: dict[str, Derived] = {}
    everything = [VersionRow(*r) for r in session.execute(select(
        ModelVersion.id, ModelVersion.model_id, ModelVersion.version, ModelVersion.lineage, ModelVersion.created_at))]
    for v in everything:
        lin = v.lineage or {}
        if lin.get("job_id") in jobs:
            found[v.id] = Derived(v, str(lin["job_id"]))
        elif any(d.get("dataset") == name and d.get("version") == version and not lin.get("job_id")
                 for d in lin.get("datasets") or [] if isinstance(d, dict)):
            found[v.id] = Derived(v, "lineage")
    grew = True
    while grew:  # models built on marked models, and the ones built on those
        grew = False
        for v in everything:
            bases = (v.lineage or {}).get(BASE_KEY) or []
            hit = next((b for b in bases if b in found), None) if v.id not in found else None
            if hit is not None:
                found[v.id] = Derived(v, hit)
                grew = True
    return sorted(found.values(), key=lambda d: (d.version.created_at, d.version.id))


def deployments_of(session: Session, version_ids: set[str]) -> list[Deployment]:
    """Deployments serving one of the versions now, pinned or through an alias."""
    if not version_ids:
        return []
    pinned = list(session.scalars(select(Deployment).where(Deployment.version_id.in_(version_ids))))
    aliases = {(a.model_id, a.alias) for a in session.scalars(select(ModelAlias)
                                                              .where(ModelAlias.version_id.in_(version_ids)))}
    followed = [d for d in session.scalars(select(Deployment).where(Deployment.alias.is_not(None)))
                if (d.model_id, d.alias) in aliases]
    return pinned + followed


def withdraw(session: Session, blobs: SealedBlobs, p: Principal, ds: Dataset, version: int, *,
             mode: str = "stop", reason: str = "", end_grants: bool = True,
             request_id: str = "-") -> tuple[DatasetWithdrawal, list[EventDraft]]:
    """Withdraw ``version`` of ``ds`` (admins of its owner); returns the record and the audit events
    for each organization it reaches (the request's own event is the caller's)."""
    name = catalog.full_name(session, ds)
    p.require_own(ds.org_id, f"dataset {name}", Role.admin)
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}; got {mode!r}",
                           hint="stop: deployments of derived models stop; warn: they serve on with a warning")
    v = catalog.version(session, ds, version)
    derived = derived_versions(session, ds, v.version)
    snapshot = {"checksum": v.checksum, "size_bytes": v.size_bytes, "row_count": v.row_count}
    deletion.delete(session, blobs, p, ds, v.version)  # 409 while a job reads it; the blob after commit
    ended: list[str] = []
    if end_grants:
        for g in session.scalars(select(Grant).where(Grant.resource_type == catalog.RTYPE,
                                                     Grant.resource_id == ds.id, Grant.revoked_at.is_(None))):
            grants.revoke_grant(session, p, g.id)
            ended.append(g.id)
    w = DatasetWithdrawal(id=new_id("wd"), org_id=ds.org_id, dataset_id=ds.id, dataset=name, version=v.version,
                          mode=mode, reason=reason, created_by=p.user_id, **snapshot)
    session.add(w)
    session.flush()
    models = {m.id: m for m in session.scalars(select(RegisteredModel).where(
        RegisteredModel.id.in_({d.version.model_id for d in derived})))} if derived else {}
    orgs = {o.id: o.name for o in session.scalars(select(Organization).where(
        Organization.id.in_({m.org_id for m in models.values()})))} if models else {}
    events: list[EventDraft] = []
    marked = []
    for d in derived:
        m = models[d.version.model_id]
        session.add(WithdrawnModelVersion(version_id=d.version.id, withdrawal_id=w.id, model_id=m.id,
                                          owner_org_id=m.org_id, mode=mode, via=d.via[:200]))
        marked.append({"version_id": d.version.id, "model": f"{orgs[m.org_id]}/{m.name}",
                       "version": d.version.version, "via": d.via})
        events.append(EventDraft("withdrawal.model_marked", request_id=request_id, actor_user_id=p.user_id,
                                 actor_org_id=p.org_id, resource_type="model_version", resource_id=d.version.id,
                                 resource_org_id=m.org_id, project_id=m.project_id,
                                 details={"withdrawal": w.id, "dataset": name, "version": v.version,
                                          "mode": mode, "via": d.via}))
    deps = deployments_of(session, {d.version.id for d in derived})
    for dep in deps:
        events.append(EventDraft(f"withdrawal.deployment_{'stopped' if mode == 'stop' else 'warned'}",
                                 request_id=request_id, actor_user_id=p.user_id, actor_org_id=p.org_id,
                                 resource_type="deployment", resource_id=dep.id, resource_org_id=dep.org_id,
                                 details={"withdrawal": w.id, "dataset": name, "version": v.version}))
    w.effects = {"grants_ended": ended, "models": marked,
                 "deployments": [{"id": d.id, "name": d.name, "org_id": d.org_id} for d in deps]}
    session.flush()
    return w, events


def marks(session: Session, version_id: str) -> list[dict[str, Any]]:
    """The withdrawals that marked a model version (empty: none)."""
    rows = session.execute(select(WithdrawnModelVersion, DatasetWithdrawal)
                           .join(DatasetWithdrawal, DatasetWithdrawal.id == WithdrawnModelVersion.withdrawal_id)
                           .where(WithdrawnModelVersion.version_id == version_id)
                           .order_by(DatasetWithdrawal.created_at)).all()
    return [{"withdrawal": w.id, "dataset": w.dataset, "version": w.version, "mode": mk.mode, "via": mk.via,
             "reason": w.reason, "created_at": w.created_at} for mk, w in rows]


def view(w: DatasetWithdrawal) -> dict[str, Any]:
    return {"id": w.id, "dataset": w.dataset, "version": w.version, "mode": w.mode, "reason": w.reason,
            "checksum": w.checksum, "size_bytes": w.size_bytes, "row_count": w.row_count,
            "created_at": w.created_at, "created_by": w.created_by,
            "grants_ended": (w.effects or {}).get("grants_ended", []), "models": (w.effects or {}).get("models", []),
            "deployments": (w.effects or {}).get("deployments", []),
            "node_copies": (w.effects or {}).get("node_copies", [])}  # copies the sites reported deleted


def concerning(org_id: str) -> Listing:
    """Withdrawals the organization made or that marked one of its model versions, newest first."""
    reached = select(WithdrawnModelVersion.withdrawal_id).where(WithdrawnModelVersion.owner_org_id == org_id)
    return Listing(select(DatasetWithdrawal), (DatasetWithdrawal.created_at, DatasetWithdrawal.id), desc=True,
                   any_of=(DatasetWithdrawal.org_id == org_id, DatasetWithdrawal.id.in_(reached)))


def get(session: Session, p: Principal, withdrawal_id: str) -> DatasetWithdrawal:
    """A withdrawal its organization made, or one that marked the caller's models; else 404."""
    w = session.get(DatasetWithdrawal, withdrawal_id)
    if w is not None and (w.org_id == p.org_id or session.scalar(
            select(WithdrawnModelVersion.version_id).where(WithdrawnModelVersion.withdrawal_id == w.id,
                                                           WithdrawnModelVersion.owner_org_id == p.org_id)
            .limit(1)) is not None):
        return w
    raise NotFound(f"withdrawal {withdrawal_id!r} not found",
                   hint="list the ones you can see with `consortium withdrawals list`")


def of_dataset(session: Session, ds: Dataset) -> list[DatasetWithdrawal]:
    return list(session.scalars(select(DatasetWithdrawal).where(DatasetWithdrawal.dataset_id == ds.id)
                                .order_by(DatasetWithdrawal.version)))
