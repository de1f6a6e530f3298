"""A worker killed with SIGKILL leaves its job's Flower processes running (they live in their own
sessions); the next worker kills them: at its start for jobs that no longer run (here), and when
it re-queues the job of a dead worker (``test_faults.test_a_restarted_hub_worker_requeues_and_finishes_the_job``).
Real processes and a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from support import start_worker, wait_for

from consortium.federation.engine.processes import MARK, job_tag, tagged


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
