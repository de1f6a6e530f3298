"""The Ray executor end to end: a real dispatcher process hands the queue's jobs to the package's
real Ray cluster (``ray_cluster``): a training job, a Ray worker killed mid-job, cancellation, a
grant revoked before the job reaches the cluster, a recipe larger than the cluster, no cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import free_port, pg_database, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.one_backend]  # a Ray run; the queue is tested on both

MLP = {"name": "bc-ray", "data": {"dataset": None, "target": "target", "seed": 0},
       "process": [{"normalize": {"method": "standard"}}], "model": {"type": "mlp", "hidden": [16]},
       "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01, "epochs": 10, "batch_size": 32},
       "evaluate": {"cv_folds": 0}}


def cnn(dataset: str, name: str, epochs: int) -> dict[str, Any]:
    return {"name": name, "data": {"dataset": dataset}, "process": [{"rescale": {}}],
            "model": {"type": "cnn", "channels": [8]}, "train": {"epochs": epochs, "batch_size": 32},
            "evaluate": {"cv_folds": 0}}


@pytest.fixture(scope="module")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory, ray_cluster: Any) -> Iterator[object]:
    """The module's hub, with the Ray executor on the package's cluster (its submission checks
    read the cluster's size the dispatcher records)."""
    from consortium.config import Settings

    home = tmp_path_factory.mktemp(f"home-ray-{backend}")
    url, drop = pg_database() if backend == "postgres" else (f"sqlite:///{home / 'consortium.db'}", None)
    yield Settings(home=home, database_url=url, executor="ray", ray_address=ray_cluster.address)
    if drop:
        drop()


def start_dispatcher(settings: Any, ray_cluster: Any, lease_s: int = 10) -> subprocess.Popen[bytes]:
    env = {**os.environ, **ray_cluster.env, "CONSORTIUM_HOME": str(settings.home),
           "CONSORTIUM_DATABASE_URL": settings.database_url, "CONSORTIUM_JOB_LEASE_S": str(lease_s),
           "CONSORTIUM_HEARTBEAT_S": "1", "CONSORTIUM_RAY_CANCEL_GRACE_S": "5"}
    log = open(Path(settings.home) / "dispatcher.log", "ab")  # the child holds it open
    return subprocess.Popen([sys.executable, "-m", "consortium.jobs.ray_executor"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def dispatcher(settings: Any, ray_cluster: Any, services: Any) -> Iterator[subprocess.Popen[bytes]]:
    from consortium.jobs.executors import cluster

    p = start_dispatcher(settings, ray_cluster)

    def reported() -> bool:
        assert p.poll() is None, (Path(settings.home) / "dispatcher.log").read_text()[-3000:]
        with services.session_factory() as s:
            c = cluster(s)
            return c is not None and c.cpus == ray_cluster.cpus
    wait_for(reported, 60, 0.3, "the dispatcher's report of the cluster")
    yield p
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def wait_job(http: Any, actor: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{job_id}", headers=actor.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None
    return wait_for(done, timeout, 0.3, f"job {job_id}")  # type: ignore[no-any-return]


def items(body: Any) -> list[dict[str, Any]]:
    """A list answer's items (``{"items": [...], "next_cursor": ...}``, or a bare list)."""
    return body["items"] if isinstance(body, dict) else body  # type: ignore[no-any-return]


def events(http: Any, actor: Any, job_id: str, kind: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/jobs/{job_id}/events", params={"kind": kind, "limit": 1000}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return [e["data"] for e in items(r.json())]


def ray_pid(http: Any, actor: Any, job_id: str) -> int | None:
    """The pid of the Ray worker process running the job's latest attempt (its task logs it)."""
    pids = [e["pid"] for e in events(http, actor, job_id, "log") if "pid" in e]
    return pids[-1] if pids else None


@pytest.fixture(scope="module")
def digits(http: Any, world: Any) -> tuple[Any, str]:
    a = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "digits", "name": "digits"}, headers=a.headers)
    assert r.status_code == 201, r.text
    return a, f"{a.org}/digits"


def test_a_training_job_runs_on_the_cluster(http: Any, world: Any, dispatcher: Any, ray_cluster: Any) -> None:
    a = world.actor(world.org())
    assert http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                     headers=a.headers).status_code == 201
    r = http.post("/api/v1/jobs", json={"recipe": {**MLP, "data": {**MLP["data"], "dataset": f"{a.org}/bc"},
                                                   "train": {**MLP["train"], "workers": 1}}}, headers=a.headers)
    assert r.status_code == 201, r.text
    job = wait_job(http, a, r.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["metrics"]["accuracy"] >= 0.9
    assert job["result"]["model"] == f"{a.org}/bc-ray" and job["attempts"] == 1
    # claimed by the dispatcher, run by a Ray worker process of this cluster with the CPU it declared
    running = [e for e in events(http, a, job["id"], "state") if e["state"] == "running"]
    assert running and running[0]["worker"].startswith("ray:")
    logs = [e for e in events(http, a, job["id"], "log") if "pid" in e]
    assert logs and logs[0]["cpus"] == 1 and "running on Ray node" in logs[0]["message"]
    assert logs[0]["pid"] != dispatcher.pid
    # progress came back through the database as the task trained
    epochs = [e for e in events(http, a, job["id"], "progress") if "epoch" in e]
    assert len(epochs) == 10 and epochs[-1]["loss"] < epochs[0]["loss"]


def test_a_killed_ray_worker_requeues_the_job(http: Any, digits: Any, dispatcher: Any) -> None:
    a, ds = digits
    job = http.post("/api/v1/jobs", json={"recipe": cnn(ds, "survivor", 12)}, headers=a.headers).json()
    wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("epoch"),
             90, 0.2, "first epoch")
    pid = ray_pid(http, a, job["id"])
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the Ray worker process dies mid-job (as with an OOM kill or a lost node)
    final = wait_job(http, a, job["id"], 180)
    assert final["state"] == "succeeded", final["error"]
    assert final["attempts"] == 2
    states = events(http, a, job["id"], "state")
    requeued = [s for s in states if "re-queued" in s.get("reason", "")]
    assert requeued and "Ray task died" in requeued[0]["reason"], states
    assert ray_pid(http, a, job["id"]) != pid


def test_cancelling_a_running_job_stops_its_task(http: Any, digits: Any, dispatcher: Any,
                                                   ray_cluster: Any) -> None:
    a, ds = digits
    job = http.post("/api/v1/jobs", json={"recipe": cnn(ds, "slow", 400)}, headers=a.headers).json()
    wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"].get("epoch"),
             90, 0.2, "first epoch")
    t0 = time.monotonic()
    r = http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=a.headers)
    assert r.status_code == 200 and r.json()["cancel_requested"]
    final = wait_job(http, a, job["id"], 60)
    assert final["state"] == "cancelled" and time.monotonic() - t0 < 30
    assert final["result"] is None
    # the cluster is free again: the next job runs at once
    nxt = http.post("/api/v1/jobs", json={"recipe": cnn(ds, "after-cancel", 1)}, headers=a.headers).json()
    assert wait_job(http, a, nxt["id"], 90)["state"] == "succeeded"


def test_a_grant_revoked_before_the_job_reaches_the_cluster_refuses_it_there(
        http: Any, world: Any, dispatcher: Any) -> None:
    owner, other = world.actor(world.org()), world.actor(world.org())
    assert http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                     headers=owner.headers).status_code == 201
    ds = f"{owner.org}/bc"
    g = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": ds, "permission": "compute",
                                          "grantee_org": other.org}, headers=owner.headers)
    assert g.status_code == 201, g.text
    dispatcher.send_signal(signal.SIGSTOP)  # the job stays queued while the grant goes
    try:
        r = http.post("/api/v1/jobs", json={"recipe": {**MLP, "data": {**MLP["data"], "dataset": ds}}},
                      headers=other.headers)
        assert r.status_code == 201, r.text
        assert http.delete(f"/api/v1/grants/{g.json()['id']}", headers=owner.headers).status_code in (200, 204)
    finally:
        dispatcher.send_signal(signal.SIGCONT)
    job = wait_job(http, other, r.json()["id"])
    assert job["state"] == "failed" and job["result"] is None
    assert "not found" in job["error"] and ds in job["error"], job["error"]
    # refused by the task on the cluster (it ran there, and re-checked the grant), not by the dispatcher
    assert ray_pid(http, other, job["id"]) is not None
    assert not [e for e in events(http, other, job["id"], "progress") if "epoch" in e]
    trail = items(http.get("/api/v1/audit", params={"limit": 200}, headers=owner.headers).json())
    assert not any(e["action"] == "job.compute_on_dataset" and e["actor_org_id"] == other.org_id for e in trail)


def test_more_workers_or_trials_than_the_cluster_has_is_a_422(http: Any, digits: Any, dispatcher: Any,
                                                                ray_cluster: Any) -> None:
    a, ds = digits
    base = cnn(ds, "too-wide", 1)
    cases = [({**base, "train": {**base["train"], "workers": 4}}, "train.workers"),
             ({**base, "tune": {"trials": 4, "parallel": 8, "space": {"train.lr": {"low": 0.001, "high": 0.1}}}},
              "tune.parallel")]
    for recipe, field in cases:
        r = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers)
        assert r.status_code == 422, r.text
        assert field in r.text and f"the Ray cluster has {ray_cluster.cpus}" in r.text, r.text
    ok = {**base, "train": {**base["train"], "workers": ray_cluster.cpus}}
    r = http.post("/api/v1/jobs", json={"recipe": ok}, headers=a.headers)
    assert r.status_code == 201, r.text
    http.post(f"/api/v1/jobs/{r.json()['id']}/cancel", headers=a.headers)  # its run is the DDP tests'
    wait_job(http, a, r.json()["id"], 120)


def test_no_cluster_fails_at_start_saying_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "CONSORTIUM_HOME": str(tmp_path), "CONSORTIUM_EXECUTOR": "ray",
           "CONSORTIUM_RAY_ADDRESS": f"127.0.0.1:{free_port()}", "CONSORTIUM_PORT": str(free_port()),
           "CONSORTIUM_WORKERS": "0"}
    hub = subprocess.run([str(Path(sys.executable).with_name("consortium")), "serve"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert hub.returncode != 0
    said = hub.stdout + hub.stderr
    assert "no Ray cluster answers at 127.0.0.1:" in said and "ray start --head --num-cpus" in said, said
    assert "Uvicorn running" not in said
    # the dispatcher alone (consortium worker with the executor set) says the same
    worker = subprocess.run([sys.executable, "-m", "consortium.jobs.ray_executor"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert worker.returncode != 0 and "ray start --head" in worker.stderr, worker.stderr
