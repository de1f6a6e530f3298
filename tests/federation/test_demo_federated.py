"""The demo seeded by ``consortium up`` can run the federated example as the hospital: the
federation demo step grants it compute on the other two breast-cancer partitions, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from consortium.config import Settings
from consortium.demo import seed_demo
from consortium.errors import NotFound
from consortium.governance.credentials import resolve_token
from consortium.jobs.submit import submit_recipe
from consortium.services import Services
from consortium.store.db import transaction
from consortium.store.tables.grants import Grant

ROOT = Path(__file__).resolve().parents[2]


def test_demo_lets_the_hospital_submit_the_federated_example(tmp_path: Path) -> None:
    svc = Services.start(Settings(home=tmp_path, workers=0))
    try:
        creds = seed_demo(svc)
        seed_demo(svc)  # idempotent
        doc: dict[str, Any] = yaml.safe_load((ROOT / "examples/federated-breast-cancer.yaml").read_text())
        tokens = {o["name"]: o["token"] for o in creds["organizations"]}
        with transaction(svc.session_factory) as s:
            from consortium.governance.identity import create_org, org_by_name

            hospital = org_by_name(s, "st-marys-hospital").id
            direct = [g for g in s.query(Grant).all() if g.permission == "compute" and g.revoked_at is None
                      and g.grantee_org_id == hospital and g.resource_type == "dataset"]
            assert len(direct) <= 2  # none when the demo project already grants compute; never twice
            job, _ = submit_recipe(s, resolve_token(s, tokens["st-marys-hospital"]), doc, svc.submit_checks)
            assert job.kind == "federated"
            assert [d["dataset"] for d in job.resolved["datasets"]] == doc["federated"]["datasets"]
            from consortium.data.access import load_for_compute

            rows = load_for_compute(s, resolve_token(s, tokens["st-marys-hospital"]), doc["federated"]["datasets"][1],
                                    None, svc.blobs)
            assert rows.class_names == ["malignant", "benign"]  # the demo's samples keep their label names
            outsider = create_org(s, svc.keys, "outsider-org", "Outsider", "")
        from consortium.governance import credentials, identity
        from consortium.governance.roles import Role

        # another organization's datasets without a grant: the same 404 as absent ones
        with transaction(svc.session_factory) as s, pytest.raises(NotFound) as e:
            user = identity.create_user(s, "x@outsider.example", "X", "pw-123456789", is_operator=False)
            identity.add_member(s, outsider.id, user.id, Role.owner)
            p = credentials.principal_for(user, identity.org_by_name(s, "outsider-org"), Role.owner, "test")
            submit_recipe(s, p, doc, svc.submit_checks)
        assert "riverside-clinic/breast-cancer" in str(e.value)
    finally:
        svc.close()
