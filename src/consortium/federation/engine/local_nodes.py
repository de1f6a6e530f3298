"""Standing node agents on the hub's machine: what ``consortium up`` runs for the demo organizations.

One ``consortium node`` child process per organization, each with its own data directory
``<sites>/<org>`` (mode 0700; ``consortium up`` gives the demo sites' directory outside the hub's
home, ``Settings.demo_sites``, and ``--publish``; the default ``CONSORTIUM_HOME/nodes/<org>`` is
where the hub stages rows of hub datasets), its organization's API token (passed in the
environment, never on the command line) and a log in ``CONSORTIUM_HOME/logs/node-<org>.log``.
Each agent registers with the hub (retrying until the hub listens), advertises the datasets in
its directory and heartbeats. A federated job naming a dataset the agent advertises trains on
the agent's own rows; one naming a hub dataset of the organization stages its rows in
``CONSORTIUM_HOME/nodes/<org>`` when the agent's directory is that one. Either way the agent's
own ``flower-supernode`` joins the job's SuperLink over TLS with its registered key. ``stop`` ends
the agents with SIGTERM (each stops
its SuperNodes first), then SIGKILL after a deadline; an agent also stops by itself when its
parent (the hub) is gone.

>>> nodes = LocalNodes("http://127.0.0.1:8000", "/tmp/c-doc-home")
>>> nodes.data_dir("riverside-clinic").as_posix()
'/tmp/c-doc-home/nodes/riverside-clinic'
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

NODE_NAME = "local"


class LocalNodes:
    """``consortium node`` agents as child processes, one per organization."""

    def __init__(self, hub_url: str, home: str | os.PathLike[str], *, interval: float = 3.0,
                 name: str = NODE_NAME, sites: str | os.PathLike[str] | None = None, publish: bool = False) -> None:
        self.hub_url, self.home, self.interval, self.name = hub_url, Path(home), interval, name
        self.sites = Path(sites) if sites is not None else self.home / "nodes"
        self.publish = publish  # `consortium node --publish`: the hub lists each local dataset (a node dataset)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def data_dir(self, org: str) -> Path:
        return self.sites / org

    def start(self, tokens: dict[str, str]) -> LocalNodes:
        """Start one agent per ``org -> API token`` (an admin or owner token of that organization)."""
        from consortium.federation.engine.processes import python_path

        for org, token in tokens.items():
            d = self.data_dir(org)
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
            log = self.home / "logs" / f"node-{org}.log"
            log.parent.mkdir(exist_ok=True)
            env = {**os.environ, "CONSORTIUM_TOKEN": token, "CONSORTIUM_URL": self.hub_url,
                   "PYTHONPATH": python_path()}
            with log.open("ab") as f:
                self.procs[org] = subprocess.Popen(  # noqa: S603 - this interpreter running consortium, no shell
                    [sys.executable, "-m", "consortium.cli.main", "node", "--data-dir", str(d), "--name", self.name,
                     "--interval", str(self.interval), "--parent-pid", str(os.getpid()),
                     *(["--publish"] if self.publish else [])],
                    env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def alive(self) -> dict[str, bool]:
        return {org: p.poll() is None for org, p in self.procs.items()}

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every agent (it stops its SuperNodes), SIGKILL those still running at the deadline."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def __enter__(self) -> LocalNodes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
