"""Demo step for ``consortium up``: each demo organization's site gets one IID partition of
breast_cancer (``breast-cancer``) as a node dataset, and the hospital gets ``digits`` as a hub
dataset (the centralized path of the tour). Idempotent: a dataset already in the catalog is left
alone.

A node dataset stays at its site: the step plays each site's administrator, saving the partition
into that organization's node data directory ``Settings.demo_sites/<org>`` (outside the hub's
home) the way ``consortium nodes add-data`` does, and publishing what its node advertises
(schema and statistics, ``consortium node --publish``) to the catalog
(``consortium.data.node_datasets``). The hub holds no row of it; the demo nodes ``consortium up``
starts read those directories, and federated jobs train there.

Run by ``consortium.demo.seed_demo`` (``consortium/demo/__init__.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consortium.data import catalog, node_datasets
from consortium.data.importer import ingest_sample
from consortium.demo.orgs import DEMO_ORGS, demo_owner
from consortium.governance.audit import EventDraft
from consortium.governance.principal import Principal
from consortium.services import Services

HOSPITAL = DEMO_ORGS[0][0]
SITE_DATASET = "breast-cancer"
NODE = "local"  # the name `consortium up` gives each demo organization's node


def site_dir(svc: Services, org: str) -> Path:
    """The node data directory of a demo organization's site."""
    s = svc.settings
    return (s.demo_sites or s.home.with_name(s.home.name + "-sites")) / org  # Settings derives it from home


def _seed_site(svc: Services, session: Session, p: Principal, org: str, part: int) -> tuple[Any, bool]:
    """Save the site's partition (as `consortium nodes add-data` would) and publish its advertisement."""
    from consortium.data.samples import load_sample, partition
    from consortium.federation.app.datasets import list_datasets, save_dataset
    from consortium.federation.node.agent import describe_one
    from consortium.store.home import make_private

    root = site_dir(svc, org)
    if SITE_DATASET not in list_datasets(root):
        data = partition(load_sample("breast_cancer"), len(DEMO_ORGS), skew="iid", seed=0)[part - 1]
        save_dataset(root, SITE_DATASET, data)
    make_private(root)  # the site's rows: directories 0700, files 0600
    desc = f"scikit-learn sample 'breast_cancer', partition {part}/{len(DEMO_ORGS)} (iid), at {org}'s node"
    return node_datasets.publish(session, p, NODE, describe_one(root, SITE_DATASET), desc)


def seed_datasets(svc: Services, session: Session, out: dict[str, Any]) -> None:
    events, seeded = [], []
    for i, (org, _, _) in enumerate(DEMO_ORGS):
        seeded.append(f"{org}/{SITE_DATASET}")
        if catalog.find(session, org, SITE_DATASET) is not None:
            continue  # published before (or a hub dataset of a home seeded by an older version)
        p = demo_owner(session, org)
        v, created = _seed_site(svc, session, p, org, i + 1)
        if created:
            events.append(EventDraft("demo.publish_node_dataset", actor_user_id=p.user_id, actor_org_id=p.org_id,
                                     resource_type=catalog.RTYPE, resource_id=v.dataset_id, resource_org_id=p.org_id,
                                     details={"version": v.version, "rows": v.row_count, "node": NODE,
                                              "data_dir": str(site_dir(svc, org))}))
    seeded.append(f"{HOSPITAL}/digits")
    if catalog.find(session, HOSPITAL, "digits") is None:
        p = demo_owner(session, HOSPITAL)
        v, created = ingest_sample(session, svc.blobs, p, "digits", "digits", 1, 1, "iid", seed=0)
        if created:
            events.append(EventDraft("demo.import_dataset", actor_user_id=p.user_id, actor_org_id=p.org_id,
                                     resource_type=catalog.RTYPE, resource_id=v.dataset_id, resource_org_id=p.org_id,
                                     details={"version": v.version, "rows": v.row_count}))
    if events:
        svc.audit_in(session, events)
    out["datasets"] = seeded
    out["sites"] = {org: str(site_dir(svc, org)) for org, _, _ in DEMO_ORGS}
