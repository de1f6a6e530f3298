"""A worker killed with SIGKILL leaves its job's Flower processes running (they live in their own
sessions); the next worker kills them: at its start for jobs that no longer run, and when it
re-queues the job of a dead worker. Real processes and a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fl_helpers import two_orgs_sharing_bc
from support import start_worker, wait_for

from consortium.federation.engine.processes import MARK, all_tagged, job_tag, sweep, tagged


def _tagged_sleeper(tag: str) -> subprocess.Popen[bytes]:
    """A stand-in for a leftover SuperLink: a process in its own session carrying ``tag``."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env={**os.environ, MARK: tag},
                            start_new_session=True)


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.kill()
    p.wait(10)


def test_worker_start_kills_processes_of_jobs_that_no_longer_run(http: Any, world: Any, settings: Any) -> None:
    a = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", headers=a.headers, json={"sample": "breast_cancer", "name": "bc"})
    assert r.status_code == 201, r.text
    job = http.post("/api/v1/jobs", headers=a.headers, json={"recipe": {
        "name": "orphan", "federated": {"datasets": [f"{a.org}/bc"], "rounds": 1, "min_nodes": 1}}}).json()
    assert http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=a.headers).json()["state"] == "cancelled"
    orphan = _tagged_sleeper(job_tag(job["id"], 1))
    stranger = _tagged_sleeper(job_tag("job_of_another_hub", 1))  # not in this database: left alone
    worker = None
    try:
        wait_for(lambda: tagged(job_tag(job["id"], 1)), 10, 0.05, "the orphan to start")
        worker = start_worker(settings)
        wait_for(lambda: orphan.poll() is not None, 60, 0.2, "the worker to kill the orphan")
        assert orphan.returncode == -signal.SIGKILL
        assert stranger.poll() is None
    finally:
        if worker is not None:
            _stop(worker)
        _stop(orphan)
        _stop(stranger)


@pytest.mark.slow
@pytest.mark.one_backend  # about processes, not the database
def test_killed_worker_leaves_no_flower_processes(http: Any, world: Any, settings: Any, tmp_path: Path) -> None:
    a, b = two_orgs_sharing_bc(http, world)
    recipe = {"name": "long", "data": {"target": "target"}, "model": {"type": "logistic"},
              "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 200, "local_epochs": 1}}
    job = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers).json()
    first = start_worker(settings, lease_s=3)
    second = None
    try:
        wait_for(lambda: (http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["progress"] or {})
                 .get("round", 0) >= 1, 180, 0.5, "the first round")
        tag = job_tag(job["id"], 1)
        pids = tagged(tag)
        assert len(pids) >= 3  # SuperLink, two SuperNodes and what they started
        first.kill()  # SIGKILL: no chance to clean up
        first.wait(10)
        assert all(os.path.exists(f"/proc/{p}") for p in pids[:1])  # still running without their worker
        second = start_worker(settings, lease_s=3)
        wait_for(lambda: not tagged(tag), 60, 0.2, "the next worker to kill the first attempt's processes")
        http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=a.headers)
        wait_for(lambda: http.get(f"/api/v1/jobs/{job['id']}", headers=a.headers).json()["state"] != "running",
                 120, 0.5, "the cancelled job")
    finally:
        for w in (first, second):
            if w is not None:
                _stop(w)
        for t in [t for t in all_tagged() if job["id"] in t]:
            sweep(t)

