"""Federated jobs through the hub's HTTP API with a real worker process: three organizations with
IID breast_cancer partitions and compute grants, FedAvg, registration with lineage, refusals for
a missing grant and an exceeded privacy budget, and manual approval by a node's organization.

The worker runs Flower's simulation engine (``CONSORTIUM_FEDERATION_ENGINE=simulation``): the same
ServerApp/ClientApp as the deployment engine at ~0.4 s per round instead of ~22 s. The real
SuperLink/SuperNode path is covered by ``test_deployment.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from support import start_worker, stop_worker, wait_for


def fed_recipe(datasets: list[str], **fed: Any) -> dict[str, Any]:
    return {"name": "bc-fed", "data": {"target": "target", "test_size": 0.2, "seed": 0},
            "process": [{"normalize": {"method": "standard"}}], "model": {"type": "mlp", "hidden": [16]},
            "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01, "batch_size": 32},
            "federated": {"datasets": datasets, "strategy": "fedavg", "rounds": 3, "local_epochs": 1,
                          "min_nodes": len(datasets), **fed},
            "register": {"model": "bc-fed"}}


@pytest.fixture(scope="module")
def fed_worker(settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    p = start_worker(settings, CONSORTIUM_FEDERATION_ENGINE="simulation")
    yield p
    stop_worker(p)


@pytest.fixture(scope="module")
def consortium3(http: Any, world: Any) -> dict[str, Any]:
    """Three organizations, each holding one IID third of breast_cancer as ``bc``."""
    actors = [world.actor(world.org()) for _ in range(3)]
    for i, a in enumerate(actors):
        r = http.post("/api/v1/datasets/import-sample", headers=a.headers,
                      json={"sample": "breast_cancer", "name": "bc", "partitions": 3, "part": i + 1, "seed": 0})
        assert r.status_code == 201, r.text
    return {"actors": actors, "datasets": [f"{a.org}/bc" for a in actors]}


def grant(http: Any, owner: Any, ds: str, grantee: Any) -> dict[str, Any]:
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": ds, "permission": "compute",
                                          "grantee_org": grantee.org}, headers=owner.headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def granted(http: Any, c3: dict[str, Any]) -> None:
    """The first organization may compute on the other two datasets (given once per module)."""
    if not c3.get("granted"):
        a, b, c = c3["actors"]
        grant(http, b, c3["datasets"][1], a)
        grant(http, c, c3["datasets"][2], a)
        c3["granted"] = True


def wait_job(http: Any, actor: Any, job_id: str, timeout: float = 150) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{job_id}", headers=actor.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None
    return wait_for(done, timeout, 0.5, f"job {job_id}")  # type: ignore[no-any-return]


def test_missing_grant_is_refused_naming_the_dataset(http: Any, consortium3: dict[str, Any]) -> None:
    a, b, _ = consortium3["actors"]
    ds = consortium3["datasets"]
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds)}, headers=a.headers)
    assert r.status_code in (403, 404), r.text
    assert ds[1] in r.text and ds[2] in r.text and ds[0] not in r.json().get("message", r.text).split(":")[-1]


@pytest.mark.one_backend  # a real federated run; the budget and approval tests run on both
def test_federated_fedavg_job_registers_a_version(http: Any, consortium3: dict[str, Any], fed_worker: Any) -> None:
    a, b, c = consortium3["actors"]
    ds = consortium3["datasets"]
    granted(http, consortium3)
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds)}, headers=a.headers)
    assert r.status_code == 201, r.text
    job = wait_job(http, a, r.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    res = job["result"]
    assert res["model"] == f"{a.org}/bc-fed" and res["rounds"] == 3
    assert sorted(res["contributors"]) == sorted([a.org, b.org, c.org])
    assert res["metrics"]["accuracy"] >= 0.85, res["metrics"]
    # one progress event per round, with every node's figures
    events = http.get(f"/api/v1/jobs/{job['id']}/events", params={"kind": "progress"},
                      headers=a.headers).json()["items"]
    rounds = [e["data"] for e in events if e["data"].get("round")]
    assert [d["round"] for d in rounds] == [1, 2, 3] and all(d["rounds"] == 3 for d in rounds)
    assert set(rounds[-1]["nodes"]) == {a.org, b.org, c.org}
    # the version is in the registry with its lineage
    v = http.get(f"/api/v1/models/{a.org}/bc-fed/versions/{res['version']}", headers=a.headers)
    assert v.status_code == 200, v.text
    lin = v.json()["lineage"]
    assert lin["source"] == "federated" and sorted(lin["organizations"]) == sorted([a.org, b.org, c.org])
    assert {d["dataset"] for d in lin["datasets"]} == set(ds) and all(d["version"] == 1 for d in lin["datasets"])
    assert "leave_one_out" in lin["contribution"] and lin["epsilon"] is None
    assert v.json()["class_names"] == ["malignant", "benign"]  # the nodes' names for labels 0 and 1
    # evaluated on the hub's held-out rows like a hub-trained version: plots and a drift reference
    base = f"/api/v1/models/{a.org}/bc-fed/versions/{res['version']}/plots"
    for plot in ("confusion_matrix", "roc"):
        png = http.get(f"{base}/{plot}", headers=a.headers)
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n", (plot, png.status_code)
    from consortium.store.tables.registry import ModelVersion

    with http.app.state.services.session_factory() as s:
        ref = s.get(ModelVersion, res["version_id"]).reference_stats
    assert ref["kind"] == "tabular" and len(ref["features"]) == 30 and ref["features"][0]["name"] == "mean_radius"
    # and explained like one: Integrated Gradients per feature, against the raw values sent
    from sklearn.datasets import load_breast_cancer

    row = load_breast_cancer().data[0].tolist()
    e = http.post(f"/api/v1/models/{a.org}/bc-fed/versions/{res['version']}/explain", json={"inputs": [row]},
                  headers=a.headers)
    assert e.status_code == 200, e.text
    feats = e.json()["features"]
    assert len(feats) == 30 and any(abs(f["score"]) > 0 for f in feats)
    assert {f["name"] for f in feats} == {f["name"] for f in ref["features"]}
    assert {round(f["value"], 4) for f in feats} == {round(v, 4) for v in row}
    # the model's data never left: the node directories of this job were removed afterwards
    assert not list((http.app.state.services.settings.home / "nodes").glob(f"*/*{job['id']}*"))


def test_privacy_budget_refuses_an_overspending_job(http: Any, consortium3: dict[str, Any],
                                                    fed_worker: Any) -> None:
    a, b, c = consortium3["actors"]
    ds = consortium3["datasets"]
    granted(http, consortium3)
    # only the owner's admins set a budget; others cannot
    assert http.put(f"/api/v1/datasets/{ds[1]}/privacy-budget", json={"epsilon": 3.0},
                    headers=a.headers).status_code in (403, 404)
    r = http.put(f"/api/v1/datasets/{ds[1]}/privacy-budget", json={"epsilon": 3.0, "delta": 1e-5}, headers=b.headers)
    assert r.status_code == 200, r.text
    assert r.json()["remaining"] == 3.0
    # without DP the job is refused: the dataset's owner asks for it
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds)}, headers=a.headers)
    assert r.status_code == 422 and "federated.dp" in r.text and ds[1] in r.text, r.text
    # over the budget: refused with the dataset and the numbers
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds, dp={"epsilon": 5.0})}, headers=a.headers)
    assert r.status_code == 409, r.text
    over = r.json()["error"]["details"]["over"][0]
    assert ds[1] in r.json()["error"]["message"] and "of 3.0 remains" in r.json()["error"]["message"]
    assert over["dataset"] == ds[1] and 4.5 < over["planned_epsilon"] <= 5.0 and over["remaining"] == 3.0
    # within the budget: runs, and the spend lands in the ledger
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds, dp={"epsilon": 2.0}, rounds=2)}, headers=a.headers)
    assert r.status_code == 201, r.text
    job = wait_job(http, a, r.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    budget = http.get(f"/api/v1/datasets/{ds[1]}/privacy-budget", headers=b.headers).json()
    assert 0 < budget["spent"] <= 2.0 + 1e-6 and budget["ledger"][0]["job_id"] == job["id"]
    assert abs(budget["remaining"] - (3.0 - budget["spent"])) < 1e-6
    # a second job of the same size no longer fits
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds, dp={"epsilon": 2.0}, rounds=2)}, headers=a.headers)
    assert r.status_code == 409 and ds[1] in r.text, r.text


def test_manual_node_holds_the_job_until_approved(http: Any, consortium3: dict[str, Any], fed_worker: Any) -> None:
    a, b, c = consortium3["actors"]
    ds = consortium3["datasets"]
    granted(http, consortium3)
    r = http.post("/api/v1/nodes", json={"name": "site-1", "approve": "manual",
                                         "datasets": [{"name": "bc-site", "kind": "tabular", "rows": 190,
                                                       "rows_data": [[1, 2]]}]}, headers=c.headers)
    assert r.status_code == 201, r.text
    assert r.json()["datasets"] == [{"name": "bc-site", "kind": "tabular", "rows": 190}]  # never rows
    # (no local "bc" advertised: c's rows train on the hub's loopback node; site training is covered by
    # tests/cli/test_up_nodes.py and test_multisite_netns.py)
    node = r.json()["id"]
    job = http.post("/api/v1/jobs", json={"recipe": fed_recipe([ds[0], ds[2]], rounds=2)}, headers=a.headers).json()
    waiting = wait_for(lambda: (lambda p: p if p.get("stage") == "waiting_for_approval" else None)(
        http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"]), 60, 0.3, "approval stage")
    assert waiting["pending"] == [c.org]
    assert job["id"] in http.get(f"/api/v1/nodes/{node}", headers=c.headers).json()["pending"]
    # another organization cannot approve for c
    assert http.post(f"/api/v1/nodes/{node}/approve/{job['id']}", headers=a.headers).status_code == 404
    r = http.post(f"/api/v1/nodes/{node}/approve/{job['id']}", headers=c.headers)
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    assert wait_job(http, a, job["id"])["state"] == "succeeded"
    # a rejection fails the job, naming the organization
    job = http.post("/api/v1/jobs", json={"recipe": fed_recipe([ds[0], ds[2]], rounds=2)}, headers=a.headers).json()
    wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("pending"),
             60, 0.3, "pending")
    http.post(f"/api/v1/nodes/{node}/reject/{job['id']}", headers=c.headers)
    final = wait_job(http, a, job["id"])
    assert final["state"] == "failed" and c.org in final["error"]


def test_a_rejecting_site_is_left_out_while_min_nodes_holds(http: Any, world: Any, consortium3: dict[str, Any],
                                                            fed_worker: Any) -> None:
    a, _, c = consortium3["actors"]
    granted(http, consortium3)
    b = world.actor(world.org())  # a third site without a privacy budget (the budget test gives one to the second)
    r = http.post("/api/v1/datasets/import-sample", headers=b.headers,
                  json={"sample": "breast_cancer", "name": "bc", "partitions": 3, "part": 2, "seed": 0})
    assert r.status_code == 201, r.text
    grant(http, b, f"{b.org}/bc", a)
    r = http.post("/api/v1/nodes", json={"name": "site-1", "approve": "manual"}, headers=c.headers)
    assert r.status_code == 201, r.text
    datasets = [consortium3["datasets"][0], f"{b.org}/bc", consortium3["datasets"][2]]
    r = http.post("/api/v1/jobs", json={"recipe": fed_recipe(datasets, rounds=2, min_nodes=2)}, headers=a.headers)
    assert r.status_code == 201, r.text
    job = r.json()
    wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("pending"),
             60, 0.3, "pending")
    assert http.post(f"/api/v1/nodes/site-1/reject/{job['id']}", headers=c.headers).status_code == 200
    final = wait_job(http, a, job["id"])
    assert final["state"] == "succeeded", final["error"]
    assert sorted(final["result"]["contributors"]) == sorted([a.org, b.org])  # two of three still meet min_nodes
    v = http.get(f"/api/v1/models/{a.org}/bc-fed/versions/{final['result']['version']}", headers=a.headers).json()
    assert c.org not in [d["owner"] for d in v["lineage"]["datasets"]]
    events = http.get(f"/api/v1/jobs/{job['id']}/events", headers=a.headers)
    assert f"running without {c.org}" in events.text, events.text


@pytest.mark.one_backend  # a real federated run; the queue's cancel runs on both in tests/jobs
def test_cancel_stops_a_federated_job_between_rounds(http: Any, consortium3: dict[str, Any],
                                                     fed_worker: Any) -> None:
    a = consortium3["actors"][0]
    granted(http, consortium3)
    ds = [consortium3["datasets"][0], consortium3["datasets"][2]]
    job = http.post("/api/v1/jobs", json={"recipe": fed_recipe(ds, rounds=500)}, headers=a.headers).json()
    c = consortium3["actors"][2]  # c may have a manual node (see the approval test): approve ahead
    http.post(f"/api/v1/nodes/site-1/approve/{job['id']}", headers=c.headers)
    wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("round"),
             60, 0.2, "first round")
    assert http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=a.headers).status_code == 200
    final = wait_job(http, a, job["id"], 60)
    assert final["state"] == "cancelled", final
    assert final["progress"]["round"] < 500
