"""``consortium serve`` stopped the way service managers stop it (SIGTERM: docker stop, systemd)
takes its job workers down with it, and a worker whose hub died without a word (SIGKILL) leaves on
its own instead of polling forever. Real processes; nothing mocked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLI = Path(sys.executable).parent / "consortium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def _start_hub(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    port = _free_port()
    env = {**os.environ, "CONSORTIUM_HOME": str(tmp_path / "home"), "CONSORTIUM_PORT": str(port),
           "CONSORTIUM_WORKERS": "2"}
    env.pop("CONSORTIUM_DATABASE_URL", None)
    hub = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "hub.log", "wb"))  # noqa: SIM115  (the child keeps it)
    ok = _wait(lambda: hub.poll() is not None or _healthy(port), 90)
    assert ok and hub.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
    assert _wait(lambda: len(_children(hub.pid)) >= 2, 30)
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
        assert _wait(lambda: not any(_alive(w) for w in workers), 20), \
            f"workers {[w for w in workers if _alive(w)]} outlived their killed hub"
    finally:
        _kill(workers)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
