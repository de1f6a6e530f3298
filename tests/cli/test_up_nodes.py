"""``consortium up`` as a real process: it starts one ``consortium node`` per demo organization,
registered with the hub, and stops them all when it stops (Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import wait_for

from consortium.demo import DEMO_ORGS
from consortium.errors import Unavailable
from consortium.sdk.client import Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node(url: str, token: str) -> dict | None:  # type: ignore[type-arg]
    try:
        return next(iter(Client(url, token).nodes.list()), None)
    except Unavailable:  # the hub does not listen yet
        return None


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow
def test_up_runs_a_node_per_demo_organization_and_stops_them(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CONSORTIUM_HOME": str(tmp_path), "CONSORTIUM_PORT": str(port), "CONSORTIUM_WORKERS": "0",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    up = subprocess.Popen([sys.executable, "-m", "consortium.cli.main", "up"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    agents: list[int] = []
    try:
        creds = tmp_path / "demo-credentials.json"
        wait_for(creds.exists, 120, 0.2, "the demo seed")
        url = f"http://127.0.0.1:{port}"
        for org in json.loads(creds.read_text())["organizations"]:
            node = wait_for(lambda o=org: _node(url, o["token"]), 90, 0.5, f"the node of {org['name']}")
            assert node["online"] and node["agent"]["data_dir"] == str((tmp_path / "nodes" / org["name"]).resolve())
        agents = _children(up.pid)
        assert len(agents) == len(DEMO_ORGS)
    finally:
        up.send_signal(signal.SIGINT)
        out = up.communicate(timeout=60)[0]
    assert "started a node for each demo organization" in out, out
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in agents), 20, 0.2, "the nodes to stop")
    log = (tmp_path / "logs" / f"node-{DEMO_ORGS[0][0]}.log").read_text()
    assert "registered" in log and "node stopped" in log
