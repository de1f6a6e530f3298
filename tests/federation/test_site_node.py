"""Multi-site path on one machine: an organization's ``consortium node`` agent keeps its rows in
its own data directory, the hub's worker assigns it the run, and the agent's real
``flower-supernode`` joins the hub's SuperLink (deployment engine; one round, about a minute)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from fl_helpers import finished_job, two_orgs_sharing_bc
from support import start_worker, wait_for

from consortium.data.samples import load_sample, partition
from consortium.federation.app.datasets import save_dataset
from consortium.federation.node.agent import NodeAgent
from consortium.sdk.client import Client


@pytest.mark.one_backend  # Flower processes at a site; the hub's database work is covered on both elsewhere
def test_site_node_trains_at_the_site(http: Any, live_url: str, world: Any, settings: Any, tmp_path: Path) -> None:
    a, b = two_orgs_sharing_bc(http, world)
    site = tmp_path / "site-b"
    save_dataset(site, "bc", partition(load_sample("breast_cancer"), 2, seed=0)[1])
    agent = NodeAgent(Client(live_url, b.token), "site-b", site, interval=0.5)
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    worker = start_worker(settings)
    try:
        wait_for(lambda: agent.node.get("id"), 10, 0.1, "registration")
        recipe = {"name": "site", "data": {"target": "target"}, "process": [{"normalize": {}}],
                  "model": {"type": "logistic"}, "train": {"lr": 0.05},
                  "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 1}, "register": {"model": "site"}}
        job = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers).json()
        wait_for(lambda: agent.runs, 60, 0.2, "the site's SuperNode")
        final = finished_job(http, a, job["id"])
        assert final["state"] == "succeeded", final["error"]
        assert sorted(final["result"]["contributors"]) == sorted([a.org, b.org])
        assert "deployment" in final["result"]["engine"]
        v = http.get(f"/api/v1/models/{a.org}/site/versions/1", headers=a.headers).json()
        site_entry = next(d for d in v["lineage"]["datasets"] if d["owner"] == b.org)
        assert "site" in site_entry["location"] and site_entry["rows"] == 284
        # the hub never wrote b's rows into its own node directories
        assert not (settings.home / "nodes" / b.org).exists()
        wait_for(lambda: not agent.runs, 10, 0.2, "the SuperNode to stop after the run")
    finally:
        agent.close()
        t.join(5)
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
