"""The demo seeded by ``consortium up`` can run the federated example as the hospital: the
federation demo step grants it compute on the other two breast-cancer partitions, once. Each
partition is a node dataset: its rows are in its site's own directory, outside the hub's home, and
the hub refuses to read them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sitemarks import found_in, row_needles

from consortium.config import Settings
from consortium.demo import seed_demo
from consortium.errors import InvalidInput, NotFound
from consortium.federation.app.datasets import load_dataset
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
            from consortium.data import catalog
            from consortium.data.access import load_for_compute

            v = catalog.version(s, catalog.find(s, "riverside-clinic", "breast-cancer"))
            assert v.format == "node" and v.blob_key == "" and v.row_count == 190
            assert v.schema["class_names"] == ["malignant", "benign"]  # the demo's samples keep their label names
            assert {"min", "max", "mean"} <= set(v.schema["columns"][0])  # statistics, never rows
            with pytest.raises(InvalidInput, match="node dataset: its rows stay at node local"):
                load_for_compute(s, resolve_token(s, tokens["st-marys-hospital"]), doc["federated"]["datasets"][1],
                                 None, svc.blobs)
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
        # each site's rows are in its own directory (where `consortium up`'s node reads them), none in the hub's home
        sites = svc.settings.demo_sites
        assert sites is not None and not sites.is_relative_to(tmp_path)
        needles = []
        for org in tokens:
            frame = load_dataset(sites / org, "breast-cancer").frame
            needles += row_needles(frame, "target")
        assert found_in(tmp_path, needles) == []
        csv = sites / "check.csv"  # the search finds rows that are there
        frame.to_csv(csv, index=False)
        assert found_in(sites, needles[-12:])
    finally:
        svc.close()
        shutil.rmtree(tmp_path.with_name(tmp_path.name + "-sites"), ignore_errors=True)
