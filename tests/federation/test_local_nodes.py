"""The standing nodes ``consortium up`` runs on the hub's machine: real ``consortium node`` child
processes register with the hub, and a federated job trains on them (the hub stages each
organization's rows in the node's directory and assigns it the run; the node's own
``flower-supernode`` joins the job's SuperLink over TLS with its registered key)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from fl_helpers import finished_job, two_orgs_sharing_bc
from support import start_worker, wait_for

from consortium.federation.engine.local_nodes import LocalNodes
from consortium.federation.engine.processes import all_tagged
from consortium.sdk.client import Client


def test_local_nodes_register_and_stop(live_url: str, world: Any, tmp_path: Path) -> None:
    a = world.actor(world.org())
    nodes = LocalNodes(live_url, tmp_path, interval=0.5).start({a.org: a.token})
    try:
        node = wait_for(lambda: next(iter(Client(live_url, a.token).nodes.list()), None), 60, 0.2, "the node")
        assert node["name"] == "local" and node["online"]
        assert node["agent"]["data_dir"] == str((tmp_path / "nodes" / a.org).resolve())
        assert node["agent"]["public_key"].startswith("ecdsa-sha2-nistp384 ")
        key = tmp_path / "nodes" / a.org / ".node" / "supernode.key"
        assert oct(key.stat().st_mode & 0o777) == "0o600"
        assert a.token not in " ".join(nodes.procs[a.org].args)  # the token travels in the environment
    finally:
        nodes.stop(timeout=10)
    assert nodes.alive() == {a.org: False} and nodes.procs[a.org].returncode == 0


@pytest.mark.one_backend  # Flower processes on standing nodes; database work is covered on both elsewhere
def test_federated_job_trains_on_the_standing_nodes(http: Any, live_url: str, world: Any, settings: Any) -> None:
    a, b = two_orgs_sharing_bc(http, world)
    nodes = LocalNodes(live_url, settings.home, interval=0.5).start({a.org: a.token, b.org: b.token})
    worker = start_worker(settings)
    try:
        for x in (a, b):
            wait_for(lambda x=x: next(iter(Client(live_url, x.token).nodes.list()), None), 60, 0.2, "the nodes")
        recipe = {"name": "standing", "data": {"target": "target"}, "process": [{"normalize": {}}],
                  "model": {"type": "logistic"}, "train": {"lr": 0.05},
                  "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 1},
                  "register": {"model": "standing"}}
        job = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers).json()
        final = finished_job(http, a, job["id"])
        assert final["state"] == "succeeded", final["error"]
        assert sorted(final["result"]["contributors"]) == sorted([a.org, b.org])
        assert final["result"]["metrics"]["accuracy"] > 0.8  # the hub's held-out rows still evaluate it
        v = http.get(f"/api/v1/models/{a.org}/standing/versions/1", headers=a.headers).json()
        assert all("hub's machine" in d["location"] for d in v["lineage"]["datasets"])
        for x in (a, b):  # each organization's own node ran the job's SuperNode, over TLS
            log = next((settings.home / "nodes" / x.org / ".logs").glob("supernode-*.log")).read_text()
            assert "SuperNode ID" in log
        # the SuperNodes stop after the run and the staged rows are removed
        wait_for(lambda: not [t for t in all_tagged() if job["id"] in t], 20, 0.2, "the job's processes to end")
        assert not [p for p in (settings.home / "nodes" / a.org).iterdir() if not p.name.startswith(".")]
    finally:
        nodes.stop(timeout=10)
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
