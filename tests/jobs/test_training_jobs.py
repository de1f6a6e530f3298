"""Training jobs end to end: a real worker process, compute-to-data across organizations, cancel,
progress events, refusals before the job starts, and a killed worker."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from support import start_worker, wait_for

MLP = {"name": "bc-mlp", "data": {"dataset": None, "target": "target", "seed": 0},
       "process": [{"normalize": {"method": "standard"}}], "model": {"type": "mlp", "hidden": [16]},
       "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01, "epochs": 15, "batch_size": 32},
       "evaluate": {"cv_folds": 0}, "register": {"model": "bc-mlp"}}


def recipe(dataset: str, **over: Any) -> dict[str, Any]:
    r = {**MLP, "data": {**MLP["data"], "dataset": dataset}}
    r.update(over)
    return r


def wait_job(http: Any, actor: Any, job_id: str, timeout: float = 180) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{job_id}", headers=actor.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None
    return wait_for(done, timeout, 0.5, f"job {job_id}")  # type: ignore[no-any-return]


@pytest.mark.one_backend  # a real worker trains; grants are checked on both in the authorization tests
def test_compute_grant_lets_another_org_train_without_rows(http: Any, world: Any, worker: Any) -> None:
    owner, other = world.actor(world.org()), world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                  headers=owner.headers)
    assert r.status_code == 201, r.text
    ds = f"{owner.org}/bc"
    # without a grant: refused before it starts, and the dataset's existence is not revealed
    r = http.post("/api/v1/jobs", json={"recipe": recipe(ds)}, headers=other.headers)
    assert r.status_code == 404, r.text
    g = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": ds, "permission": "compute",
                                          "grantee_org": other.org}, headers=owner.headers)
    assert g.status_code == 201, g.text
    r = http.post("/api/v1/jobs", json={"recipe": recipe(ds)}, headers=other.headers)
    assert r.status_code == 201, r.text
    job = wait_job(http, other, r.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["metrics"]["accuracy"] >= 0.9
    assert job["result"]["model"] == f"{other.org}/bc-mlp"
    events = http.get(f"/api/v1/jobs/{job['id']}/events", params={"kind": "progress"},
                      headers=other.headers).json()["items"]
    epochs = [e["data"] for e in events if "epoch" in e["data"]]
    assert epochs and epochs[-1]["loss"] < epochs[0]["loss"]
    # the same events as server-sent events (what the job page watches); a reconnect resumes
    every = http.get(f"/api/v1/jobs/{job['id']}/events", params={"limit": 1000}, headers=other.headers).json()["items"]
    ids = [e["id"] for e in every]

    def streamed(**kw: Any) -> list[int]:
        body = http.get(f"/api/v1/jobs/{job['id']}/stream", headers={**other.headers, **kw.pop("headers", {})},
                        **kw).text
        assert body.endswith("event: end\ndata: {}\n\n"), body[-200:]
        return [int(line[4:]) for line in body.splitlines() if line.startswith("id: ")]

    assert streamed() == ids
    assert streamed(params={"after": ids[2]}) == ids[3:]
    assert streamed(headers={"last-event-id": str(ids[-2])}) == ids[-1:]
    # explanations: Integrated Gradients on the registered version, per feature
    from sklearn.datasets import load_breast_cancer

    row = load_breast_cancer().data[0].tolist()
    r = http.post(f"/api/v1/models/{job['result']['model']}/versions/latest/explain", json={"inputs": [row]},
                  headers=other.headers)
    assert r.status_code == 200, r.text
    assert len(r.json()["features"]) == 30 and any(abs(f["score"]) > 0 for f in r.json()["features"])
    # the grantee never gets rows
    r = http.get(f"/api/v1/datasets/{ds}/versions/1/download", headers=other.headers)
    assert r.status_code in (403, 404)
    # both the refusal and the use are in the owner's audit trail
    trail = http.get("/api/v1/audit", params={"limit": 200}, headers=owner.headers).json()["items"]
    assert any(e["action"] == "job.compute_on_dataset" and e["actor_org_id"] == other.org_id for e in trail)
    assert any(e["action"] == "submit_job" and e["outcome"] == "not_found" for e in trail)
    # revoking takes effect for the next job at once
    http.delete(f"/api/v1/grants/{g.json()['id']}", headers=owner.headers)
    assert http.post("/api/v1/jobs", json={"recipe": recipe(ds)}, headers=other.headers).status_code == 404


def test_bad_recipes_are_refused_with_the_field(http: Any, world: Any) -> None:
    a = world.actor(world.org())
    http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"}, headers=a.headers)
    ds = f"{a.org}/bc"
    cases = [
        (recipe(ds, train={**MLP["train"], "optimizer": "adagrad"}), "train.optimizer"),
        (recipe(f"{a.org}/missing"), "not found"),
        (recipe(ds, data={**MLP["data"], "dataset": ds, "target": "nope"}), "data.target"),
        (recipe(ds, model={"type": "cnn", "channels": [8]}), "cnn needs image data"),
        (recipe(ds, train={**MLP["train"], "loss": "mse"}), "mse on class labels"),
    ]
    for body, needle in cases:
        r = http.post("/api/v1/jobs", json={"recipe": body}, headers=a.headers)
        assert 400 <= r.status_code < 500, (needle, r.text)
        assert needle in r.text, (needle, r.text)


def test_cancel_and_killed_worker(http: Any, world: Any, settings: Any, worker: Any) -> None:
    a = world.actor(world.org())
    http.post("/api/v1/datasets/import-sample", json={"sample": "digits", "name": "digits"}, headers=a.headers)
    long = {"name": "slow", "data": {"dataset": f"{a.org}/digits"}, "process": [{"rescale": {}}],
            "model": {"type": "cnn", "channels": [8]}, "train": {"epochs": 400, "batch_size": 16},
            "evaluate": {"cv_folds": 0}}
    job = http.post("/api/v1/jobs", json={"recipe": long}, headers=a.headers).json()
    wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("epoch"),
             120, 0.3, "first epoch")
    r = http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=a.headers)
    assert r.status_code == 200 and r.json()["cancel_requested"]
    assert wait_job(http, a, job["id"], 60)["state"] == "cancelled"
    # a worker that dies mid-job: the job is re-queued and finished by another worker
    worker.send_signal(signal.SIGSTOP)  # the module's worker stops claiming
    try:
        short = {**long, "name": "survivor", "train": {"epochs": 25, "batch_size": 32}}
        job = http.post("/api/v1/jobs", json={"recipe": short}, headers=a.headers).json()
        doomed = start_worker(settings, lease_s=3)
        wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("epoch"),
                 120, 0.3, "first epoch")
        doomed.kill()
        doomed.wait(10)
        rescuer = start_worker(settings, lease_s=3)
        try:
            final = wait_job(http, a, job["id"], 240)
        finally:
            rescuer.terminate()
            rescuer.wait(10)
        assert final["state"] == "succeeded", final["error"]
        assert final["attempts"] == 2
        states = [e["data"] for e in http.get(f"/api/v1/jobs/{job['id']}/events", params={"kind": "state"},
                                              headers=a.headers).json()["items"]]
        assert any("re-queued" in s.get("reason", "") for s in states)
    finally:
        worker.send_signal(signal.SIGCONT)


@pytest.mark.one_backend  # the worker's own memory, not the database
def test_a_worker_over_its_memory_limit_replaces_itself(http: Any, world: Any, settings: Any, worker: Any) -> None:
    """After a job that left it above ``CONSORTIUM_WORKER_MAX_RSS_MB``, a worker execs a fresh
    copy of itself: same pid, what the job imported (torch, scikit-learn) returned, next job runs."""
    import psutil

    a = world.actor(world.org())
    http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"}, headers=a.headers)
    worker.send_signal(signal.SIGSTOP)  # the module's worker claims nothing meanwhile
    lean = start_worker(settings, CONSORTIUM_WORKER_MAX_RSS_MB="250")
    try:
        proc = psutil.Process(lean.pid)
        born = proc.create_time()
        short = recipe(f"{a.org}/bc", train={**MLP["train"], "epochs": 2}, register={"model": "lean"})
        for _ in range(2):
            job = http.post("/api/v1/jobs", json={"recipe": short}, headers=a.headers).json()
            assert wait_job(http, a, job["id"])["state"] == "succeeded"
            # torch alone is ~190 MB: a worker that kept the job's imports stays far above 250 MB
            wait_for(lambda: proc.memory_info().rss < 250e6, 60, 0.5, "the worker's fresh process")
            assert lean.poll() is None and proc.create_time() == born  # the same process, exec'd
    finally:
        lean.terminate()
        lean.wait(10)
        worker.send_signal(signal.SIGCONT)
