"""Federated tuning (issue 20 point 3): ``tune`` on a federated job through the hub's HTTP API.

A small end-to-end job on Flower's simulation engine through a real worker (the rl controller,
3 children x 2 rounds, DP on, two organizations' breast_cancer halves): every child ran as a federated run, the
best child's model was registered with the search on its card, and the privacy ledger has one entry
per child. API-level: the bound on children, parallel children, pbt and train.epochs are 422s
naming the field; a search whose children x epsilon exceeds a budget is refused naming the budget.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fl_helpers import finished_job, two_orgs_sharing_bc
from support import start_worker, stop_worker, wait_for

SPACE = {"train.lr": {"low": 0.003, "high": 0.05, "log": True}, "model.hidden.0": {"choices": [8, 16]}}


def recipe(datasets: list[str], tune: dict[str, Any] | None = None, **fed: Any) -> dict[str, Any]:
    return {"name": "bc-fed-tune", "data": {"target": "target", "test_size": 0.2, "seed": 0},
            "process": [{"normalize": {"method": "standard"}}], "model": {"type": "mlp", "hidden": [16]},
            "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01, "batch_size": 32},
            "federated": {"datasets": datasets, "rounds": 2, "local_epochs": 1, "min_nodes": len(datasets), **fed},
            "tune": {"method": "tpe", "trials": 3, "space": SPACE, **(tune or {})},
            "register": {"model": "bc-fed-tune"}}


@pytest.fixture(scope="module")
def two_orgs(http: Any, world: Any) -> dict[str, Any]:
    """Two organizations with one half of breast_cancer each as ``bc``; the first may compute on both."""
    a, b = two_orgs_sharing_bc(http, world)
    return {"a": a, "b": b, "datasets": [f"{a.org}/bc", f"{b.org}/bc"]}


def budgeted(http: Any, c: dict[str, Any], epsilon: float) -> tuple[Any, Any, list[str]]:
    """The second organization sets its dataset's privacy budget to ``epsilon``; (a, b, datasets)."""
    a, b, ds = c["a"], c["b"], c["datasets"]
    r = http.put(f"/api/v1/datasets/{ds[1]}/privacy-budget", json={"epsilon": epsilon, "delta": 1e-5},
                 headers=b.headers)
    assert r.status_code == 200, r.text
    return a, b, ds


@pytest.fixture(scope="module")
def fed_worker(settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    p = start_worker(settings, CONSORTIUM_FEDERATION_ENGINE="simulation")
    yield p
    stop_worker(p)


@pytest.mark.parametrize(("tune", "fed", "named"), [
    ({"trials": 9}, {}, "tune.trials: a federated job tunes with at most 8 children"),
    ({"parallel": 2}, {}, "tune.parallel"),
    ({"method": "pbt", "trials": 2}, {}, "tune.method: pbt"),
    ({"space": {"train.epochs": {"low": 1, "high": 3}}}, {}, "tune.space.train.epochs"),
])
def test_federated_tuning_refusals_name_the_field(http: Any, two_orgs: dict[str, Any], tune: dict[str, Any],
                                                  fed: dict[str, Any], named: str) -> None:
    r = http.post("/api/v1/jobs", json={"recipe": recipe(two_orgs["datasets"], tune, **fed)},
                  headers=two_orgs["a"].headers)
    assert r.status_code == 422 and named in r.json()["error"]["message"], r.text


def test_children_times_epsilon_over_the_budget_is_refused(http: Any, two_orgs: dict[str, Any]) -> None:
    a, b, ds = budgeted(http, two_orgs, 4.0)
    # one run of epsilon 1.0 fits, but 5 children of it do not: refused naming the budget and the count
    r = http.post("/api/v1/jobs", json={"recipe": recipe(ds, {"trials": 5}, dp={"epsilon": 1.0})}, headers=a.headers)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert ds[1] in err["message"] and "5 tuning children" in err["message"] and "of 4.0 remains" in err["message"]
    over = err["details"]["over"][0]
    assert over["children"] == 5 and over["planned_epsilon"] == 5.0 and over["remaining"] == 4.0
    assert "tune.trials" in err["hint"]


def test_a_policy_epsilon_per_job_counts_every_child(http: Any, two_orgs: dict[str, Any]) -> None:
    a, b, ds = two_orgs["a"], two_orgs["b"], two_orgs["datasets"]
    url = f"/api/v1/datasets/{ds[1]}/policy"
    assert http.put(url, json={"dp_max_epsilon": 2.0}, headers=b.headers).status_code == 200
    try:  # epsilon 1.0 per child is within 2.0, but 3 children spend 3.0 of the dataset
        r = http.post("/api/v1/jobs", json={"recipe": recipe(ds, dp={"epsilon": 1.0})}, headers=a.headers)
        assert r.status_code == 403 and "dp_max_epsilon:" in r.json()["error"]["message"], r.text
        assert "epsilon 3 is over" in r.json()["error"]["message"], r.text
    finally:
        assert http.delete(url, headers=b.headers).status_code in (200, 204)


@pytest.mark.slow
@pytest.mark.one_backend
def test_federated_tuning_job_registers_the_best_child(http: Any, two_orgs: dict[str, Any],
                                                        fed_worker: Any) -> None:
    a, b, ds = budgeted(http, two_orgs, 4.0)
    r = http.post("/api/v1/jobs", json={"recipe": recipe(ds, {"method": "rl"}, dp={"epsilon": 1.0})},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    # while it runs, 3 x 1.0 is reserved: a second search of 2 children no longer fits the 4.0
    r = http.post("/api/v1/jobs", json={"recipe": recipe(ds, {"trials": 2}, dp={"epsilon": 1.0})}, headers=a.headers)
    assert r.status_code == 409 and "2 tuning children" in r.text, r.text
    job = finished_job(http, a, job_id, 300)
    assert job["state"] == "succeeded", job["error"]
    res = job["result"]
    t = res["tuning"]
    assert t["method"] == "rl" and t["budget"] == 3 and t["pruner"] == "Hyperband"
    assert t["n_complete"] + t["n_pruned"] + t["n_failed"] == 3 and t["n_complete"] >= 1 and t["n_failed"] == 0
    assert t["reward"] == "val_accuracy" and len(t["rewards"]) == 3
    # each child was a federated run: its rounds streamed with its number, and its end as a tuning row
    events = http.get(f"/api/v1/jobs/{job_id}/events", headers=a.headers, params={"limit": 500}).json()["items"]
    rounds = [e["data"] for e in events if e["kind"] == "progress" and e["data"].get("round")]
    assert {d["child"] for d in rounds} == {0, 1, 2} and all(d["children"] == 3 for d in rounds)
    ends = [e["data"]["trial"] for e in events if e["kind"] == "progress" and isinstance(e["data"].get("trial"), dict)]
    assert [x["number"] for x in ends] == [0, 1, 2] and all(x["rounds"] >= 1 for x in ends)
    logs = " | ".join(e["data"]["message"] for e in events if e["kind"] == "log")
    assert "child 2 " in logs and "tuning done: best child" in logs, logs
    # the best child's model is the version, with the search on its card
    v = http.get(f"/api/v1/models/{a.org}/bc-fed-tune/versions/{res['version']}", headers=a.headers)
    assert v.status_code == 200, v.text
    lin = v.json()["lineage"]
    assert lin["source"] == "federated" and sorted(lin["organizations"]) == sorted([a.org, b.org])
    assert lin["tuning"]["children"] == 3 and lin["tuning"]["best_trial"] == t["best_trial"]
    assert set(lin["tuning"]["preferences"]) == set(SPACE)  # the controller's final preferences per choice
    best = lin["tuning"]["best_params"]
    assert lin["tuned_recipe"]["train"]["lr"] == pytest.approx(best["train.lr"])
    assert lin["tuned_recipe"]["model"]["hidden"][0] == best["model.hidden.0"]
    assert res["metrics"]["accuracy"] == pytest.approx(t["rewards"][t["best_trial"]], abs=1e-5)
    png = http.get(f"/api/v1/models/{a.org}/bc-fed-tune/versions/{res['version']}/plots/tuning_rewards",
                   headers=a.headers)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    # the ledger: one entry per child (each trained at least a round), within the per-child epsilon
    budget = http.get(f"/api/v1/datasets/{ds[1]}/privacy-budget", headers=b.headers).json()
    mine = [e for e in budget["ledger"] if e["job_id"] == job_id]
    assert len(mine) == 3 and all(0 < e["epsilon"] <= 1.0 + 1e-6 for e in mine), budget
    assert budget["reserved"] == 0 and abs(budget["remaining"] - (4.0 - budget["spent"])) < 1e-6


@pytest.mark.slow
@pytest.mark.one_backend
def test_cancel_stops_the_search_and_charges_the_child_that_ran(http: Any, two_orgs: dict[str, Any],
                                                                fed_worker: Any) -> None:
    a, b, ds = budgeted(http, two_orgs, 20.0)
    r = http.post("/api/v1/jobs", json={"recipe": recipe(ds, rounds=200, dp={"epsilon": 1.0})}, headers=a.headers)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    wait_for(lambda: (lambda p: p if p.get("round") and p.get("child") == 0 else None)(
        http.get(f"/api/v1/jobs/{job_id}", headers=a.headers).json()["progress"]), 120, 0.2, "child 0's first round")
    assert http.post(f"/api/v1/jobs/{job_id}/cancel", headers=a.headers).status_code == 200
    final = wait_for(lambda: (lambda j: j if j["state"] in ("succeeded", "failed", "cancelled") else None)(
        http.get(f"/api/v1/jobs/{job_id}", headers=a.headers).json()), 120, 0.3, "the job's end")
    assert final["state"] == "cancelled", final
    assert final["progress"].get("child", 0) == 0 and final["progress"].get("round", 0) < 200
    budget = http.get(f"/api/v1/datasets/{ds[1]}/privacy-budget", headers=b.headers).json()
    mine = [e for e in budget["ledger"] if e["job_id"] == job_id]
    assert len(mine) == 1 and mine[0]["epsilon"] == pytest.approx(1.0), budget  # child 0, at its planned epsilon
    assert budget["reserved"] == 0
