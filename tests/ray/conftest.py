"""One real local Ray cluster for the whole tests/ray package (``ray_cluster``, session-scoped).

``ray start --head --block --num-cpus 2 --object-store-memory 200000000`` runs in a private temp
dir with every port it would otherwise fix (GCS, client server, dashboard, agents) taken free, so
two clusters on one machine do not collide. It is stopped by signalling the process group it was
started in (``ray start --block`` takes its raylet, GCS and workers down with it), never with
``ray stop``, which ends every Ray process of the machine's user, other sessions' clusters too.

Use it as ``ray_cluster.address`` (a GCS address host:port, what ``CONSORTIUM_RAY_ADDRESS`` and
``ray.init(address=...)`` take) and ``ray_cluster.env`` (the variables a dispatcher or a job
process needs to reach it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CPUS = 2
OBJECT_STORE_BYTES = 200_000_000  # Ray's default is 30% of RAM


@dataclass
class RayCluster:
    address: str  # the GCS address, 127.0.0.1:port
    cpus: int
    temp_dir: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {"CONSORTIUM_EXECUTOR": "ray", "CONSORTIUM_RAY_ADDRESS": self.address, "RAY_ADDRESS": self.address,
                "RAY_USAGE_STATS_ENABLED": "0"}

    def worker_pids(self) -> list[int]:
        """The pids of this cluster's Ray worker processes (``ray::...`` task and actor processes)."""
        out = subprocess.run(["ps", "-o", "pid=,cmd=", "--ppid", ",".join(map(str, self._raylets()))],
                             capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in out.splitlines()
                if line.split()[1:] and line.split()[1].startswith("ray::") and "Agent" not in line]

    def _raylets(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=,cmd=", "-g", str(os.getpgid(self.proc.pid))],
                             capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in out.splitlines() if "/raylet/raylet" in line] or [0]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's unix socket paths must stay under 107 bytes
    port = _free_port()
    ray = str(Path(sys.executable).with_name("ray"))
    cmd = [ray, "start", "--head", "--block", "--num-cpus", str(CPUS),
           "--object-store-memory", str(OBJECT_STORE_BYTES), "--include-dashboard", "false",
           "--disable-usage-stats", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--temp-dir", str(temp / "r"), "--ray-client-server-port", str(_free_port()),
           "--dashboard-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port()),
           "--dashboard-agent-grpc-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port()),
           "--metrics-export-port", str(_free_port())]
    log = open(temp / "ray-start.log", "wb")  # closed at teardown
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=temp, env=env, start_new_session=True)
    cluster = RayCluster(f"127.0.0.1:{port}", CPUS, temp, proc)
    try:
        deadline = time.monotonic() + 60
        while b"Ray runtime started" not in (temp / "ray-start.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ray start failed:\n" + (temp / "ray-start.log").read_text()[-3000:])
            time.sleep(0.2)
        yield cluster
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the cluster's own process group (SIGKILL after 20 s)."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
