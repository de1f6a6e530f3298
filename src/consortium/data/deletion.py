"""Deleting a dataset, or one of its versions: admins of the owner organization only, refused
while a queued or running job uses it; deleting a dataset revokes every grant on it.

Order, for crash safety: the rows go first, in the caller's transaction, together with the grant
revocations and the audit event; the encrypted blobs are unlinked only after that transaction has
committed. A crash in between leaves blob files that no row points at: encrypted, listed and
served by nothing, removed by ``BlobStore.sweep_orphans``. The other order could leave a
listed version whose blob is gone, so that its download and every job on it fail. A rolled-back
transaction deletes no blob. A job submitted in the same instant as the deletion (after the check)
fails when it starts, with the dataset not found.

A version's number is never given again (``Dataset.last_version``), so a model's lineage that
names ``bc`` version 3 cannot come to mean another file.

>>> with transaction(svc.session_factory) as s:                                   # doctest: +SKIP
...     out = delete(s, svc.blobs, principal, catalog.find(s, "st-marys-hospital", "bc"))
>>> out["versions"], out["revoked_grants"]                                        # doctest: +SKIP
([1, 2], ['grt_...'])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from consortium.data import catalog
from consortium.errors import Conflict
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs
from consortium.store.tables.base import utcnow
from consortium.store.tables.data import Dataset
from consortium.store.tables.grants import Grant
from consortium.store.tables.jobs import TERMINAL, Job

log = logging.getLogger(__name__)


def jobs_using(session: Session, ds: Dataset, version: int | None = None) -> list[Job]:
    """Unfinished (queued, running) jobs whose resolved recipe reads ``ds`` (at ``version`` if given)."""
    out = []
    for job in session.scalars(select(Job).where(Job.state.notin_(TERMINAL)).order_by(Job.created_at)):
        for d in (job.resolved or {}).get("datasets") or []:
            if d.get("dataset_id") == ds.id and (version is None or d.get("version") == version):
                out.append(job)
                break
    return out


def delete(session: Session, blobs: SealedBlobs, p: Principal, ds: Dataset,
           version: int | str | None = None) -> dict[str, Any]:
    """Delete dataset ``ds`` (``version`` None) or one version of it; returns what went."""
    name = catalog.full_name(session, ds)
    p.require_own(ds.org_id, f"dataset {name}", Role.admin)
    doomed = [catalog.version(session, ds, version)] if version is not None else catalog.versions(session, ds)
    number = doomed[0].version if version is not None else None
    busy = jobs_using(session, ds, number)
    if busy:
        what = f"version {number} of {name}" if number is not None else name
        raise Conflict(f"{what} is used by {len(busy)} queued or running job(s): "
                       + ", ".join(f"{j.id} ({j.name}, {j.state})" for j in busy),
                       hint="wait for them to finish or cancel them with `consortium jobs cancel ID`, "
                            "then delete again")
    revoked: list[str] = []
    if version is None:
        for g in session.scalars(select(Grant).where(Grant.resource_type == catalog.RTYPE,
                                                     Grant.resource_id == ds.id, Grant.revoked_at.is_(None))):
            g.revoked_at = utcnow()
            revoked.append(g.id)
    keys = [v.blob_key for v in doomed if v.blob_key]  # a node dataset's versions have no blob
    for v in doomed:
        session.delete(v)
    if version is None:
        session.flush()  # the versions first: the dataset row is what they point at
        session.delete(ds)
    session.flush()
    after_commit(session, lambda: _unlink(blobs, keys))
    return {"dataset": name, "deleted": "dataset" if version is None else "version",
            "versions": [v.version for v in doomed], "revoked_grants": revoked,
            "bytes": sum(v.size_bytes for v in doomed)}


def _unlink(blobs: SealedBlobs, keys: list[str]) -> None:
    for k in keys:
        try:
            blobs.delete(k)
        except OSError as e:  # the rows are gone already: an orphan blob, for sweep_orphans
            log.warning("deleted dataset blob %s could not be removed: %s", k, e)


def after_commit(session: Session, action: Callable[[], Any]) -> None:
    """Run ``action`` once the session's transaction has committed; never if it rolls back."""
    state = {"live": True}

    def committed(_: Session) -> None:
        if state["live"]:
            state["live"] = False
            action()

    def rolled_back(_: Session) -> None:
        state["live"] = False

    event.listen(session, "after_commit", committed)
    event.listen(session, "after_rollback", rolled_back)
