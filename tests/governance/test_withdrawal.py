"""Withdrawal through lineage (issue 19 point 3), through the API on SQLite and PostgreSQL.

A hospital's dataset version is used by a partner in a centralized job and a federated one; a
third organization fine-tunes the federated model. Withdrawing the version ends its grants, marks
all three model versions (and nothing trained on another version), stops or warns their
deployments as the owner chose, deletes the blob after commit and keeps the record; "retrain
without" starts the federated recipe over the remaining datasets in one call.

The model versions are registered as the jobs would register them (``register_version`` with the
job's id in the lineage): the jobs themselves are admitted by the real submission path, and
training is covered elsewhere, so the test spends seconds, not minutes.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import pytest
from support import wait_for

from consortium.store.db import transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import tiny_classifier


def _grant(http: Any, owner: Any, ds: str, grantee: Any, perm: str = "compute") -> str:
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": ds, "permission": perm,
                                          "grantee_org": grantee.org}, headers=owner.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def _register(services: Any, org: str, name: str, lineage: dict[str, Any]) -> str:
    from consortium.registry import models as reg

    with transaction(services.session_factory) as s:
        v = reg.register_version(s, org, name, onnx=tiny_classifier(), blobs=services.blobs,
                                 task="classification", lineage=lineage)
        return v.id  # type: ignore[no-any-return]


def _finish(services: Any, job_id: str) -> dict[str, Any]:
    from consortium.jobs import queue

    with transaction(services.session_factory) as s:
        job = queue.get(s, job_id)
        queue.finish(s, job_id, "succeeded", result={})
        return dict(job.recipe)


def _deploy(http: Any, actor: Any, model: str) -> str:
    name = f"dep-{secrets.token_hex(3)}"
    r = http.post("/api/v1/deployments", json={"name": name, "model": f"{model}:1"}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return name


def _predict(http: Any, actor: Any, dep: str) -> int:
    return http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]},
                     headers=actor.headers).status_code  # type: ignore[no-any-return]


def _job(http: Any, actor: Any, recipe: dict[str, Any]) -> str:
    r = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def _central(ds: str, version: int | None = None) -> dict[str, Any]:
    return {"name": "central", "data": {"dataset": ds, "target": "target", **({"version": version} if version else {})},
            "model": {"type": "logistic"}, "train": {"epochs": 1}}


def _federated(datasets: list[str]) -> dict[str, Any]:
    return {"name": "fed", "data": {"target": "target", "test_size": 0.2},
            "model": {"type": "mlp", "hidden": [8]}, "train": {"batch_size": 32},
            "federated": {"datasets": datasets, "rounds": 1, "local_epochs": 1, "min_nodes": len(datasets)},
            "register": {"model": "fed"}}


@pytest.fixture(scope="module")
def world3(http: Any, world: Any, services: Any) -> dict[str, Any]:
    owner, partner, tuner = (world.actor(world.org()) for _ in range(3))
    viewer = world.actor(owner.org, "viewer")
    for a in (owner, partner):
        r = http.post("/api/v1/datasets/import-sample", headers=a.headers,
                      json={"sample": "breast_cancer", "name": "bc", "partitions": 2, "part": 1, "seed": 0})
        assert r.status_code == 201, r.text
    return {"owner": owner, "partner": partner, "tuner": tuner, "viewer": viewer}


def test_withdrawal_follows_lineage_ends_grants_stops_deployments_and_deletes_the_blob(
        http: Any, services: Any, world3: dict[str, Any]) -> None:
    owner, partner, tuner = world3["owner"], world3["partner"], world3["tuner"]
    ds = f"{owner.org}/bc"
    grant = _grant(http, owner, ds, partner)
    # a second version (the one withdrawn: a federated job reads a dataset's newest version)
    v1 = http.get(f"/api/v1/datasets/{owner.org}/bc/versions/1/download", headers=owner.headers)
    up = http.post(f"/api/v1/datasets/{owner.org}/bc/versions/upload", params={"filename": "v2.csv"},
                   content=v1.content, headers={**owner.headers, "content-type": "text/csv"})
    assert up.status_code == 201, up.text
    central = _job(http, partner, _central(ds, 2))
    fed = _job(http, partner, _federated([ds, f"{partner.org}/bc"]))
    later = _job(http, partner, _central(ds, 1))
    recipes = {j: _finish(services, j) for j in (central, fed, later)}
    v_central = _register(services, partner.org, "bc-central", {"job_id": central, "recipe": recipes[central]})
    v_fed = _register(services, partner.org, "bc-fed", {"job_id": fed, "recipe": recipes[fed], "source": "federated"})
    _register(services, partner.org, "bc-later", {"job_id": later, "recipe": recipes[later]})
    v_tuned = _register(services, tuner.org, "bc-tuned", {"base_versions": [v_fed], "source": "upload"})
    dep_central = _deploy(http, partner, f"{partner.org}/bc-central")
    dep_later = _deploy(http, partner, f"{partner.org}/bc-later")
    assert _predict(http, partner, dep_central) == 200
    with services.session_factory() as s:
        from consortium.data import catalog

        blob = catalog.version(s, catalog.find(s, owner.org, "bc"), 2).blob_key
    assert services.blobs.store.exists(blob)

    r = http.post(f"/api/v1/datasets/{owner.org}/bc/versions/2/withdraw", headers=owner.headers,
                  json={"mode": "stop", "reason": "data subject's erasure request (Art. 17)"})
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["grants_ended"] == [grant]
    marked = {m["version_id"]: m for m in w["models"]}
    assert set(marked) == {v_central, v_fed, v_tuned}  # not bc-later, trained on version 1
    assert marked[v_fed]["via"] == fed and marked[v_tuned]["via"] == v_fed
    assert [d["name"] for d in w["deployments"]] == [dep_central]
    # the deployment stops (451) within the gate's cache life; the other one serves on
    wait_for(lambda: _predict(http, partner, dep_central) == 451, 10, 0.2, "the deployment to stop")
    body = http.post(f"/api/v1/deployments/{dep_central}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]},
                     headers=partner.headers).json()
    assert body["error"]["code"] == "withdrawn" and f"{ds} version 2" in body["error"]["message"]
    assert _predict(http, partner, dep_later) == 200
    # the version is gone, its blob too (after commit); the record and the audit keep what happened
    assert http.get(f"/api/v1/datasets/{owner.org}/bc/versions/2", headers=owner.headers).status_code == 404
    assert http.get(f"/api/v1/datasets/{owner.org}/bc/versions/1", headers=owner.headers).status_code == 200
    assert not services.blobs.store.exists(blob)
    assert http.get(f"/api/v1/grants/{grant}", headers=owner.headers).json()["state"] == "revoked"
    listed = http.get(f"/api/v1/datasets/{owner.org}/bc/withdrawals", headers=owner.headers).json()["items"]
    assert [(x["version"], x["reason"]) for x in listed] == [(2, "data subject's erasure request (Art. 17)")]
    seen = http.get("/api/v1/audit", params={"action": "withdrawal.", "limit": 50}, headers=tuner.headers).json()
    assert [(e["action"], e["resource_id"]) for e in seen["items"]] == [("withdrawal.model_marked", v_tuned)]
    mine = http.get("/api/v1/withdrawals", headers=partner.headers).json()["items"]
    assert [x["id"] for x in mine] == [w["id"]]
    marks = http.get(f"/api/v1/models/{partner.org}/bc-fed/versions/1/withdrawals", headers=partner.headers).json()
    assert marks["items"][0]["withdrawal"] == w["id"] and marks["items"][0]["mode"] == "stop"
    # retrain without: one call, the federated recipe over the partner's own dataset only
    job = http.post(f"/api/v1/models/{partner.org}/bc-fed/versions/1/retrain-without", headers=partner.headers)
    assert job.status_code == 201, job.text
    assert job.json()["recipe"]["federated"]["datasets"] == [f"{partner.org}/bc"]
    unmarked = http.post(f"/api/v1/models/{partner.org}/bc-later/versions/1/retrain-without",
                         headers=partner.headers)
    assert unmarked.status_code == 409 and "no withdrawn data" in unmarked.text
    # a stranger sees neither the withdrawal nor its effects
    assert http.get(f"/api/v1/withdrawals/{w['id']}", headers=world3["viewer"].headers).status_code == 200
    stranger = http.get(f"/api/v1/withdrawals/{w['id']}", headers={"authorization": "Bearer x"})
    assert stranger.status_code == 401


def test_warn_keeps_serving_and_tells_the_deployment_owner(http: Any, services: Any, world: Any) -> None:
    owner, partner = world.actor(world.org()), world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", headers=owner.headers,
                  json={"sample": "breast_cancer", "name": "bcw", "partitions": 2, "part": 2, "seed": 0})
    assert r.status_code == 201, r.text
    ds = f"{owner.org}/bcw"
    _grant(http, owner, ds, partner)
    job = _job(http, partner, _central(ds))
    v = _register(services, partner.org, "bcw-model", {"job_id": job, "recipe": _finish(services, job)})
    dep = _deploy(http, partner, f"{partner.org}/bcw-model")
    r = http.post(f"/api/v1/datasets/{owner.org}/bcw/versions/1/withdraw", headers=owner.headers,
                  json={"mode": "warn", "end_grants": False})
    assert r.status_code == 201, r.text
    assert r.json()["grants_ended"] == [] and [m["version_id"] for m in r.json()["models"]] == [v]
    answer = wait_for(lambda: (lambda a: a if "consortium-warning" in a.headers else None)(
        http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]},
                  headers=partner.headers)), 10, 0.2, "the owner's warning")
    assert answer.status_code == 200 and f"{ds} version 1" in answer.headers["consortium-warning"]
    assert http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]},
                     headers=owner.headers).status_code == 404  # the data's owner has no access to the deployment
    events = http.get("/api/v1/audit", params={"action": "withdrawal.deployment", "limit": 10},
                      headers=partner.headers).json()["items"]
    assert [e["action"] for e in events] == ["withdrawal.deployment_warned"]
    assert events[0]["details"]["dataset"] == ds


def test_a_version_nothing_depends_on_is_withdrawn_in_one_step(http: Any, world: Any) -> None:
    owner = world.actor(world.org())
    viewer = world.actor(owner.org, "viewer")
    other = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", headers=owner.headers,
                  json={"sample": "breast_cancer", "name": "solo", "partitions": 4, "part": 1, "seed": 0})
    assert r.status_code == 201, r.text
    url = f"/api/v1/datasets/{owner.org}/solo/versions/1/withdraw"
    assert http.post(url, json={"mode": "explode"}, headers=owner.headers).status_code == 422
    assert http.post(url, json={}, headers=viewer.headers).status_code == 403
    assert http.post(url, json={}, headers=other.headers).status_code == 404
    r = http.post(url, json={}, headers=owner.headers)
    assert r.status_code == 201, r.text
    assert r.json()["models"] == [] and r.json()["deployments"] == [] and r.json()["version"] == 1
    assert http.post(url, json={}, headers=owner.headers).status_code == 404  # gone: nothing to withdraw twice


def test_a_version_a_running_job_reads_is_refused_naming_the_job(http: Any, world: Any) -> None:
    owner = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", headers=owner.headers,
                  json={"sample": "breast_cancer", "name": "busy", "partitions": 4, "part": 2, "seed": 0})
    assert r.status_code == 201, r.text
    job = _job(http, owner, _central(f"{owner.org}/busy"))  # queued: no worker in this module
    r = http.post(f"/api/v1/datasets/{owner.org}/busy/versions/1/withdraw", json={}, headers=owner.headers)
    assert r.status_code == 409 and job in r.text


def test_the_sdk_withdraws_lists_and_sets_retention(live_url: str, http: Any, world: Any) -> None:
    """``client.withdrawals`` and ``client.retention`` against a real server."""
    import consortium
    from consortium.errors import NotFound

    owner = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", headers=owner.headers,
                  json={"sample": "breast_cancer", "name": "sdk", "partitions": 4, "part": 3, "seed": 0})
    assert r.status_code == 201, r.text
    c = consortium.Client(live_url, token=owner.token)
    try:
        assert c.retention.set_dataset(f"{owner.org}/sdk", 90)["days"] == 90
        assert [(x["kind"], x["days"]) for x in c.retention.list()] == [("dataset_versions", 90)]
        w = c.withdrawals.withdraw(f"{owner.org}/sdk", 1, mode="warn", reason="contract ended")
        assert w["mode"] == "warn" and c.withdrawals.get(w["id"])["reason"] == "contract ended"
        assert [x["id"] for x in c.withdrawals.list()] == [w["id"]]
        assert [x["version"] for x in c.withdrawals.of_dataset(f"{owner.org}/sdk")] == [1]
        with pytest.raises(NotFound):
            c.withdrawals.withdraw(f"{owner.org}/sdk", 1)
    finally:
        c.close()
