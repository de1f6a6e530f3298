"""Data-parallel training, parallel tuning and PBT as jobs on the package's real Ray cluster
(``ray_cluster``), through the Ray executor's real dispatcher: a digits CNN on 2 DDP workers reaches
the single-process floor and matches one process within noise; a TPE job with 2 concurrent trials;
a PBT job whose population exploits and explores; the recipe's refusals (an unknown tuning method
lists the methods). Epochs and trials are few: the module's budget is about two minutes on 2 cores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import pg_database, stop_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.one_backend]  # a Ray run; the queue is tested on both

# the digits floor recipe of tests/training/test_pipeline.py, on 2 workers (16 rows each per step)
DIGITS = {"name": "digits-ddp", "process": [{"rescale": {}}, {"normalize": {}}],
          "model": {"type": "cnn", "channels": [32, 64], "dense": [128]},
          "train": {"epochs": 12, "lr": 0.002, "batch_size": 32, "schedule": {"type": "cosine"}, "seed": 0,
                    "workers": 2},
          "evaluate": {"cv_folds": 0}}
IRIS = {"name": "iris-tune", "data": {"dataset": None, "target": "target", "val_size": 0.2},
        "process": [{"normalize": {}}], "model": {"type": "mlp", "hidden": [16], "dropout": 0.1},
        "train": {"epochs": 4, "lr": 0.01, "batch_size": 16, "seed": 0}, "evaluate": {"cv_folds": 0}}
SPACE = {"train.lr": {"low": 0.001, "high": 0.1, "log": True}, "train.batch_size": {"choices": [8, 16, 32]}}


@pytest.fixture(scope="module")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory, ray_cluster: Any) -> Iterator[object]:
    from consortium.config import Settings

    home = tmp_path_factory.mktemp(f"home-ray-training-{backend}")
    url, drop = pg_database() if backend == "postgres" else (f"sqlite:///{home / 'consortium.db'}", None)
    yield Settings(home=home, database_url=url, executor="ray", ray_address=ray_cluster.address)
    if drop:
        drop()


@pytest.fixture(scope="module")
def dispatcher(settings: Any, ray_cluster: Any, services: Any) -> Iterator[subprocess.Popen[bytes]]:
    from consortium.jobs.executors import cluster

    env = {**os.environ, **ray_cluster.env, "CONSORTIUM_HOME": str(settings.home),
           "CONSORTIUM_DATABASE_URL": settings.database_url, "CONSORTIUM_HEARTBEAT_S": "1"}
    log = open(Path(settings.home) / "dispatcher.log", "ab")  # the child holds it open
    p = subprocess.Popen([sys.executable, "-m", "consortium.jobs.ray_executor"], env=env, stdout=log,
                         stderr=subprocess.STDOUT)

    def reported() -> bool:
        assert p.poll() is None, (Path(settings.home) / "dispatcher.log").read_text()[-3000:]
        with services.session_factory() as s:
            c = cluster(s)
            return c is not None and c.cpus == ray_cluster.cpus
    wait_for(reported, 60, 0.3, "the dispatcher's report of the cluster")
    yield p
    stop_worker(p)  # SIGTERM (the dispatcher ends its flights), SIGKILL after 10 s
    log.close()


@pytest.fixture(scope="module")
def actor(http: Any, world: Any) -> Any:
    a = world.actor(world.org())
    for sample in ("digits", "iris"):
        r = http.post("/api/v1/datasets/import-sample", json={"sample": sample, "name": sample}, headers=a.headers)
        assert r.status_code == 201, r.text
    return a


def run_job(http: Any, a: Any, recipe: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    r = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers)
    assert r.status_code == 201, r.text

    def done() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{r.json()['id']}", headers=a.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None
    job: dict[str, Any] = wait_for(done, timeout, 0.5, "the job")
    assert job["state"] == "succeeded", job["error"]
    return job


def events(http: Any, a: Any, job_id: str, kind: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/jobs/{job_id}/events", params={"kind": kind, "limit": 1000}, headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    return [e["data"] for e in (body["items"] if isinstance(body, dict) else body)]


def test_data_parallel_job_reaches_the_floor_and_matches_one_process(http: Any, actor: Any,
                                                                       dispatcher: Any) -> None:
    from consortium.data.samples import load_sample
    from consortium.training.pipeline import run_training

    job = run_job(http, actor, {**DIGITS, "data": {"dataset": f"{actor.org}/digits"}})
    res = job["result"]
    assert res["metrics"]["accuracy"] >= 0.97, res["metrics"]
    # rank 0's model went through the usual path: registered, exported, checked against torch
    assert res["model"] == f"{actor.org}/digits-ddp" and res["version"] == 1
    assert res["onnx_max_abs_diff"] < 1e-4 and res["history_len"] == 12
    version = http.get(f"/api/v1/models/{actor.org}/digits-ddp/versions/1", headers=actor.headers).json()
    assert version["lineage"]["datasets"][0]["dataset"] == f"{actor.org}/digits", version
    # every epoch's row came back from rank 0 through the relay, as the job's progress
    epochs = [e for e in events(http, actor, job["id"], "progress") if e.get("stage") == "train"]
    assert [e["epoch"] for e in epochs] == list(range(1, 13)) and epochs[-1]["loss"] < epochs[0]["loss"]
    # the same recipe in one process, same epochs and effective batch: the metrics agree within noise
    one = run_training({**DIGITS, "train": {**DIGITS["train"], "workers": 1}}, load_sample("digits"))
    assert abs(one.metrics["accuracy"] - res["metrics"]["accuracy"]) <= 0.02, (one.metrics, res["metrics"])
    assert abs(one.history[-1]["val_loss"] - epochs[-1]["val_loss"]) <= 0.05


def test_a_tuning_job_runs_two_trials_at_once(http: Any, actor: Any, dispatcher: Any) -> None:
    recipe = {**IRIS, "data": {**IRIS["data"], "dataset": f"{actor.org}/iris"},
              "tune": {"trials": 4, "parallel": 2, "space": SPACE}}
    job = run_job(http, actor, recipe)
    tuning = job["result"]["tuning"]
    assert tuning["engine"] == "ray" and tuning["parallel"] == 2 and tuning["sampler"] == "TPE"
    assert tuning["n_complete"] + tuning["n_pruned"] + tuning["n_failed"] == 4 and tuning["n_complete"] >= 1
    assert 0.001 <= tuning["best_params"]["train.lr"] <= 0.1 and tuning["best_params"]["train.batch_size"] in SPACE[
        "train.batch_size"]["choices"]
    assert job["result"]["metrics"]["accuracy"] >= 0.8  # the best trial's values then trained and registered
    # finished trials were relayed as the job's tuning progress (throttled like today's)
    trials = [e for e in events(http, actor, job["id"], "progress") if e.get("stage") == "tune"]
    assert trials and {"number", "state", "value", "params"} <= set(trials[0]["trial"])


def test_a_pbt_job_exploits_and_explores(http: Any, actor: Any, dispatcher: Any) -> None:
    recipe = {**IRIS, "name": "iris-pbt", "data": {**IRIS["data"], "dataset": f"{actor.org}/iris"},
              "tune": {"method": "pbt", "trials": 4, "parallel": 2, "space": SPACE}}
    job = run_job(http, actor, recipe)
    tuning = job["result"]["tuning"]
    assert tuning["sampler"] == "PBT" and tuning["perturbation_interval"] == 1
    assert tuning["n_complete"] + tuning["n_pruned"] + tuning["n_failed"] == 4, tuning
    # every member ends, none fails; one may end PRUNED (a member whose perturbed values diverged, or
    # that was stopped before its last epoch): seen once in 8 Dec's CI, 3 of 4 complete, not reproduced
    assert tuning["n_failed"] == 0 and tuning["n_complete"] >= 3, tuning
    assert tuning["n_perturbations"] >= 1  # running trials took a better member's weights and new values
    assert 0.001 <= tuning["best_params"]["train.lr"] <= 0.1  # perturbed values stay inside the ranges
    assert job["result"]["metrics"]["accuracy"] >= 0.8


@pytest.mark.parametrize(("change", "where", "says"), [
    ({"tune": {"method": "bayes", "space": SPACE}}, "tune.method", "the methods are: tpe, pbt"),
    ({"train": {"workers": 3, "batch_size": 32}}, "train.batch_size", "do not split evenly over 3 workers"),
    ({"tune": {"method": "pbt", "space": {"model.hidden.0": {"low": 8, "high": 32}}}}, "tune.space",
     "tune one of: train.lr"),
    ({"tune": {"method": "pbt", "trials": 1, "space": SPACE}}, "tune.trials", "population"),
    ({"federated": {"datasets": ["a/b"], "dp": {"epsilon": 1.0}}, "train": {"workers": 2}}, "train.workers",
     "DP-SGD"),
])
def test_the_recipe_refuses_what_cannot_run_in_parallel(http: Any, actor: Any, change: dict[str, Any], where: str,
                                                        says: str) -> None:
    r = http.post("/api/v1/jobs", json={"recipe": {**IRIS, "data": {**IRIS["data"], "dataset": f"{actor.org}/iris"},
                                                   **change}}, headers=actor.headers)
    assert r.status_code == 422, r.text
    assert f"invalid recipe at {where}" in r.text and says in r.text, r.text
