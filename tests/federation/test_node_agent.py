"""The ``consortium node`` agent against a real hub on loopback: registration, advertising
(schema and statistics, never rows), heartbeats, the CLI process, and approvals/budgets via the SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from support import wait_for

from consortium.data.samples import load_sample, partition
from consortium.federation.app.datasets import save_dataset
from consortium.federation.node.agent import NodeAgent
from consortium.sdk.client import Client


def test_agent_registers_advertises_and_heartbeats(live_url: str, world: Any, tmp_path: Path) -> None:
    a = world.actor(world.org(), "admin")
    part = partition(load_sample("breast_cancer"), 3, seed=0)[0]
    save_dataset(tmp_path, "bc", part)
    c = Client(live_url, a.token)
    agent = NodeAgent(c, "site-1", tmp_path, approve="manual", interval=0.2)
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    try:
        first = wait_for(lambda: agent.node.get("last_seen"), 10, 0.05, "registration")
        wait_for(lambda: agent.node.get("last_seen") != first, 10, 0.05, "a heartbeat")
    finally:
        agent.stop.set()
        t.join(5)
    nodes = c.nodes.list()
    assert [(n["name"], n["approve"], n["online"]) for n in nodes] == [("site-1", "manual", True)]
    ds = nodes[0]["datasets"][0]
    assert ds["name"] == "bc" and ds["rows"] == part.n_rows and ds["target"] == "target"
    assert set(ds) <= {"name", "kind", "rows", "columns", "target", "classes", "shape", "stats"}
    col = part.frame.columns[0]
    assert abs(ds["stats"][col]["mean"] - float(part.frame[col].mean())) < 1e-9
    # a viewer of the organization sees the node but cannot register or approve
    v = Client(live_url, world.actor(a.org, "viewer").token)
    assert v.nodes.get("site-1")["id"] == nodes[0]["id"]


def test_cli_node_process_registers(live_url: str, world: Any, tmp_path: Path) -> None:
    a = world.actor(world.org(), "admin")
    save_dataset(tmp_path, "bc", partition(load_sample("breast_cancer"), 3, seed=0)[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "consortium.cli.main", "node", "--hub", live_url, "--token", a.token,
                          "--data-dir", str(tmp_path), "--name", "edge", "--interval", "0.5"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        c = Client(live_url, a.token)
        node = wait_for(lambda: next(iter(c.nodes.list()), None), 90, 0.2, "the CLI node")
        assert node["name"] == "edge" and node["approve"] == "auto" and node["datasets"][0]["name"] == "bc"
        # the node says so once the hub's answer is back (which may come after the listing shows it)
        wait_for(lambda: any("registered" in x for x in lines), 30, 0.1, "the node to print 'registered'")
    finally:
        p.terminate()
        p.wait(10)
        reader.join(10)
    assert any("node stopped" in x for x in lines), lines


def test_bare_heartbeats_are_not_audited_but_changes_are(http: Any, world: Any) -> None:
    a = world.actor(world.org(), "admin")
    ds = [{"name": "bc", "kind": "tabular", "rows": 10}]
    node = http.post("/api/v1/nodes", json={"name": "beat", "datasets": ds}, headers=a.headers).json()

    def beats() -> int:
        trail = http.get("/api/v1/audit", params={"limit": 500}, headers=a.headers).json()["items"]
        return sum(e["action"] == "heartbeat_node" for e in trail)
    for _ in range(3):
        assert http.post(f"/api/v1/nodes/{node['id']}/heartbeat", json={"datasets": ds}, headers=a.headers).is_success
    assert beats() == 0
    r = http.post(f"/api/v1/nodes/{node['id']}/heartbeat", json={"datasets": [*ds, {"name": "new"}]}, headers=a.headers)
    assert r.is_success and beats() == 1
    bad = http.post("/api/v1/nodes", json={"name": "beat", "agent": {"public_key": "ssh-rsa nope"}}, headers=a.headers)
    assert bad.status_code == 422 and "public key" in bad.json()["error"]["message"]
