"""Demo step for ``consortium up``: the hospital may compute on the clinic's and the lab's
``breast-cancer`` partitions, so ``consortium jobs submit examples/federated-breast-cancer.yaml``
works as the hospital out of the box. When the demo project ``breast-cancer-study`` (seeded
before this step) already grants compute, nothing is added; the step only fills the gap if that
project is absent. Idempotent: a grant that already lets the hospital compute is left alone.

Run by ``consortium.demo.seed_demo`` (``consortium/demo/__init__.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consortium.demo.orgs import DEMO_ORGS, demo_owner
from consortium.errors import NotFound, PermissionDenied
from consortium.governance.audit import EventDraft
from consortium.governance.roles import Permission
from consortium.services import Services

DATASET = "breast-cancer"


def seed_federation(svc: Services, session: Session, out: dict[str, Any]) -> None:
    from consortium.data import catalog
    from consortium.governance.grants import create_grant

    hospital = DEMO_ORGS[0][0]
    hp = demo_owner(session, hospital)
    events, refs = [], []
    for org, _, _ in DEMO_ORGS[1:]:
        if catalog.find(session, org, DATASET) is None:
            continue  # the data step did not seed it
        refs.append(f"{org}/{DATASET}")
        try:
            catalog.visible(session, hp, org, DATASET, Permission.compute)
            continue
        except (NotFound, PermissionDenied):
            pass
        owner = demo_owner(session, org)
        g = create_grant(session, owner, svc.resource_types.get("dataset"), f"{org}/{DATASET}", "compute",
                         grantee_org=hospital)
        events.append(EventDraft("demo.grant_compute", actor_user_id=owner.user_id, actor_org_id=owner.org_id,
                                 resource_type="dataset", resource_id=g.resource_id, resource_org_id=owner.org_id,
                                 details={"grant": g.id, "grantee_org": hospital, "permission": "compute"}))
    if events:
        svc.audit_in(session, events)
    out["federated"] = {"submit_as": hospital, "datasets": [f"{hospital}/{DATASET}", *refs],
                        "recipe": "examples/federated-breast-cancer.yaml"}
