"""``consortium up`` as a real process: it starts one ``consortium node`` per demo organization,
registered with the hub and reading its site's own directory (outside the hub's home); the demo's
federated job trains on them, the hub's home holds none of their rows, and Ctrl-C stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sitemarks import found_in, row_needles
from support import wait_for

from consortium.demo import DEMO_ORGS
from consortium.errors import Unavailable
from consortium.federation.app.datasets import load_dataset
from consortium.sdk.client import Client

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node(url: str, token: str) -> dict | None:  # type: ignore[type-arg]
    try:
        found = Client(url, token).nodes.list()
        return next(iter(found["items"] if isinstance(found, dict) else found), None)  # a page or a list
    except Unavailable:  # the hub does not listen yet
        return None


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow
def test_up_runs_a_node_per_demo_organization_and_stops_them(tmp_path: Path) -> None:
    port, home, sites = _free_port(), tmp_path / "hub", tmp_path / "hub-sites"
    env = {**os.environ, "CONSORTIUM_HOME": str(home), "CONSORTIUM_PORT": str(port), "CONSORTIUM_WORKERS": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    up = subprocess.Popen([sys.executable, "-m", "consortium.cli.main", "up"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    agents: list[int] = []
    try:
        creds = home / "demo-credentials.json"
        wait_for(creds.exists, 120, 0.2, "the demo seed")
        url = f"http://127.0.0.1:{port}"
        orgs = json.loads(creds.read_text())["organizations"]
        for org in orgs:
            node = wait_for(lambda o=org: _node(url, o["token"]), 90, 0.5, f"the node of {org['name']}")
            assert node["online"] and node["agent"]["data_dir"] == str((sites / org["name"]).resolve())
            assert [d["name"] for d in node["datasets"]] == ["breast-cancer"]
        agents = [p for p in _children(up.pid) if "node" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(agents) == len(DEMO_ORGS)
        # the demo's federated job (one round here) trains at the three nodes, on their own rows
        hospital = Client(url, orgs[0]["token"])
        doc = yaml.safe_load((ROOT / "examples/federated-breast-cancer.yaml").read_text())
        doc["federated"]["rounds"] = 1
        job = hospital.jobs.submit(yaml.safe_dump(doc), project="breast-cancer-study")
        final = hospital.jobs.wait(job["id"], timeout_s=240)
        assert final["state"] == "succeeded", final.get("error")
        assert sorted(final["result"]["contributors"]) == sorted(o["name"] for o in orgs)
        lineage = hospital.models.version("bc-federated", 1)["lineage"]
        rows = {d["owner"]: d["rows"] for d in lineage["datasets"]}  # what each node trained on, by its report
        assert sorted(rows) == sorted(o["name"] for o in orgs) and sum(rows.values()) == 569
        assert all("site" in d["location"] for d in lineage["datasets"])
        needles = [n for o in orgs for n in row_needles(load_dataset(sites / o["name"], "breast-cancer").frame,
                                                        "target")]
        assert found_in(home, needles) == []  # no site row in the hub's database, blobs, logs or job files
    finally:
        up.send_signal(signal.SIGINT)
        out = up.communicate(timeout=60)[0]
    assert "started a node for each demo organization" in out, out
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in agents), 20, 0.2, "the nodes to stop")
    log = (home / "logs" / f"node-{DEMO_ORGS[0][0]}.log").read_text()
    assert "registered" in log and "node stopped" in log
    assert found_in(home, needles) == []
    assert not [n for i, n in enumerate(needles) if i % 3 != 2 and n.decode() in out]  # nor in its output
