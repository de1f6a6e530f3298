"""End to end on Flower's deployment engine: real flower-superlink / flower-supernode processes
on loopback, three organizations with an IID split of breast_cancer."""

from __future__ import annotations

import time

import pytest
from fl_helpers import bc_recipe, centralized_accuracy

from consortium.federation.app import protocol as P
from consortium.federation.app.progress import read_progress
from consortium.federation.engine.deployment import FlowerDeployment, run_deployment
from consortium.federation.engine.simulation import job_run_config, prepare

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


def test_killed_node_does_not_stop_the_job_and_rejoins(breast_cancer, tmp_path):
    recipe = bc_recipe(rounds=3, local_epochs=1, min_nodes=2)
    _, configs, vdir = prepare(recipe, breast_cancer["parts"], breast_cancer["test"], tmp_path)
    out = tmp_path / "out"
    cfg = job_run_config(recipe, out, validation_dir=vdir, round_timeout=90, straggler_grace=6)
    victim = configs[2]
    dep = FlowerDeployment(tmp_path / "engine")
    try:
        dep.start()
        for c in configs:
            dep.add_node(c[P.ORG], c[P.DATA_DIR], c[P.DATASET])
        run_id = dep.submit(cfg)
        state = {"killed": False, "back": False}

        def chaos(rec: dict) -> None:
            if rec.get("kind") == "round" and rec["round"] == 1:
                dep.kill_node(victim[P.ORG])  # dies mid-job, while round 2 is under way
                state["killed"] = True
                dep.add_node(victim[P.ORG], victim[P.DATA_DIR], victim[P.DATASET])  # and restarts
                state["back"] = True

        dep.wait(out, run_id, timeout=280, on_record=chaos)
        leftovers_while_running = dep.leftovers()
    finally:
        dep.close()
    rounds = [r for r in read_progress(out / "progress.jsonl") if r["kind"] == "round"]
    assert state == {"killed": True, "back": True} and len(rounds) == 3
    org = victim[P.ORG]
    assert org in rounds[0]["nodes"]
    assert org not in rounds[1]["nodes"] and org in rounds[1]["missing"] and len(rounds[1]["nodes"]) == 2
    assert org in rounds[2]["nodes"]  # rejoined under a new node id
    assert rounds[2]["global"]["accuracy"] > 0.85
    assert leftovers_while_running  # the tag finds our processes ...
    deadline = time.monotonic() + 10
    while dep.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dep.leftovers() == []  # ... and close() leaves none behind
