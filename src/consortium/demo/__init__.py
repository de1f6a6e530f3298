"""The demo consortium seeded by ``consortium up``: a hospital, a clinic and a medical lab.

``seed_demo`` runs each stage's step in order, in one transaction: the organizations with their
owners and tokens (``orgs``), then sample datasets (``datasets``), a registered model with its
deployment (``models``), a project the three join (``project``), and the grants a federated job
needs (``federation``). Each step goes through its stages' services; the demo sits above them,
beside ``consortium.services``, and no stage imports it. The credentials are printed and written to
``CONSORTIUM_HOME/demo-credentials.json`` (mode 0600). Seeding is idempotent: a second run finds
what exists and creates nothing twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consortium.demo.datasets import seed_datasets
from consortium.demo.federation import seed_federation
from consortium.demo.models import seed_models
from consortium.demo.orgs import DEMO_ORGS, seed_orgs
from consortium.demo.project import seed_project
from consortium.fileutil import write_private
from consortium.governance.audit import EventDraft
from consortium.services import Services
from consortium.store.db import transaction

__all__ = ["DEMO_ORGS", "credentials_path", "seed_demo"]

# After the organizations, in this order: the project grants the datasets, and the federated step
# only fills what the project does not already grant. Each gets (services, session, credentials).
STEPS = (seed_datasets, seed_models, seed_project, seed_federation)


def credentials_path(svc: Services) -> Path:
    return svc.settings.home / "demo-credentials.json"


def seed_demo(svc: Services) -> dict[str, Any]:
    path = credentials_path(svc)
    previous = json.loads(path.read_text()) if path.exists() else {}
    out: dict[str, Any] = {"url": svc.settings.public_url}
    created: list[EventDraft] = []
    with transaction(svc.session_factory) as s:
        out["organizations"] = seed_orgs(s, svc.keys, previous, created)
        for step in STEPS:
            step(svc, s, out)
        svc.audit_in(s, created)
    write_private(path, json.dumps(out, indent=2, default=str).encode())
    return out
