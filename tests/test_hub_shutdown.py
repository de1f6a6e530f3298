"""``consortium serve`` stopped the way service managers stop it (SIGTERM: docker stop, systemd)
takes its job workers down with it, and a worker whose hub died without a word (SIGKILL) is stopped
by the kernel instead of polling forever. Real processes; nothing mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import wait_for

from consortium.federation.engine.network import free_port

CLI = Path(sys.executable).parent / "consortium"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _start_hub(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    port = free_port()
    env = {**os.environ, "CONSORTIUM_HOME": str(tmp_path / "home"), "CONSORTIUM_PORT": str(port),
           "CONSORTIUM_WORKERS": "2"}
    env.pop("CONSORTIUM_DATABASE_URL", None)
    hub = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "hub.log", "wb"))  # the child keeps it
    wait_for(lambda: hub.poll() is not None or _healthy(port), 90, what="the hub to answer")
    assert hub.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
    wait_for(lambda: len(_children(hub.pid)) >= 2, 30, what="two workers")
    return hub, _children(hub.pid)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.skipif(not CLI.exists(), reason="the consortium command is not installed next to this Python")
def test_sigterm_stops_the_workers_too(tmp_path: Path) -> None:
    hub, workers = _start_hub(tmp_path)
    hub.send_signal(signal.SIGTERM)
    try:
        assert hub.wait(30) == 128 + signal.SIGTERM  # stopped gracefully, and says why it exited
        assert not any(_alive(w) for w in workers), f"workers {[w for w in workers if _alive(w)]} outlived their hub"
    finally:
        _kill(workers)


@pytest.mark.skipif(not CLI.exists(), reason="the consortium command is not installed next to this Python")
def test_workers_leave_when_their_hub_is_killed(tmp_path: Path) -> None:
    hub, workers = _start_hub(tmp_path)
    hub.kill()
    hub.wait(10)
    try:
        wait_for(lambda: not any(_alive(w) for w in workers), 20, what="the killed hub's workers to leave")
    finally:
        _kill(workers)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
