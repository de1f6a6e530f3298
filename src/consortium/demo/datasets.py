"""Demo step for ``consortium up``: each demo organization gets one IID partition of breast_cancer
(named ``breast-cancer``), and the hospital also gets ``digits``. Idempotent: a dataset that
already has a version is left alone.

Run by ``consortium.demo.seed_demo`` (``consortium/demo/__init__.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consortium.data import catalog
from consortium.data.importer import ingest_sample
from consortium.demo.orgs import DEMO_ORGS, demo_owner
from consortium.governance.audit import EventDraft
from consortium.services import Services

HOSPITAL = DEMO_ORGS[0][0]


def seed_datasets(svc: Services, session: Session, out: dict[str, Any]) -> None:
    plan = [(org, "breast-cancer", "breast_cancer", len(DEMO_ORGS), i + 1)
            for i, (org, _, _) in enumerate(DEMO_ORGS)]
    plan.append((HOSPITAL, "digits", "digits", 1, 1))
    events, seeded = [], []
    for org, name, sample, parts, part in plan:
        seeded.append(f"{org}/{name}")
        if catalog.find(session, org, name) is not None:
            continue
        p = demo_owner(session, org)
        v, created = ingest_sample(session, svc.blobs, p, name, sample, parts, part, "iid", seed=0)
        if created:
            events.append(EventDraft("demo.import_dataset", actor_user_id=p.user_id, actor_org_id=p.org_id,
                                     resource_type=catalog.RTYPE, resource_id=v.dataset_id,
                                     resource_org_id=p.org_id,
                                     details={"version": v.version, "rows": v.row_count}))
    if events:
        svc.audit_in(session, events)
    out["datasets"] = seeded
