"""End to end on Flower's deployment engine: real flower-superlink / flower-supernode processes
on loopback, three organizations with an IID split of breast_cancer. Faults on the same engine
(killed, restarted and straggling nodes, SecAgg+ dropouts) are ``test_faults``'s."""

from __future__ import annotations

import pytest
from fl_helpers import bc_recipe, centralized_accuracy

from consortium.federation.engine.deployment import run_deployment

pytestmark = pytest.mark.slow


def test_fedavg_matches_centralized_accuracy(breast_cancer, tmp_path):
    recipe = bc_recipe(rounds=2, local_epochs=5)
    records: list[dict] = []
    res = run_deployment(recipe, breast_cancer["parts"], validation=breast_cancer["test"],
                         progress=records.append, work_dir=tmp_path, timeout=240)
    central = centralized_accuracy(recipe, breast_cancer["train"], breast_cancer["test"], epochs=10)
    assert res.final["accuracy"] >= central - 0.02, (res.final["accuracy"], central)
    assert [r["kind"] for r in records] == ["start", "round", "round", "done"]
    assert res.contributors == sorted(breast_cancer["orgs"])
    assert all(set(r["nodes"]) == set(breast_cancer["orgs"]) for r in res.history)
    assert set(res.contribution["leave_one_out"]) == set(breast_cancer["orgs"])
    assert res.state_dict and res.engine.startswith("deployment")
    assert not list((tmp_path / "engine").glob("leftover*"))
