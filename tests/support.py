"""Helpers shared by tests (import as ``from support import ...``; ``tests/`` is on sys.path)."""

from __future__ import annotations

import functools
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll with a deadline instead of sleeping."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_worker(settings: Any, lease_s: int = 30, **extra_env: str) -> subprocess.Popen[bytes]:
    """A real job worker process on the test hub's database and data directory; ``extra_env``
    adds variables, e.g. ``CONSORTIUM_FEDERATION_ENGINE="simulation"``. It keeps its imports between
    jobs (``CONSORTIUM_WORKER_MAX_RSS_MB=0``): a module's jobs would otherwise import torch anew each
    (the recycling has its own test; the hubs the UI and CLI tests start use the default)."""
    env = {**os.environ, "CONSORTIUM_HOME": str(settings.home), "CONSORTIUM_DATABASE_URL": settings.database_url,
           "CONSORTIUM_JOB_LEASE_S": str(lease_s), "CONSORTIUM_HEARTBEAT_S": "1", "OMP_NUM_THREADS": "1",
           "CONSORTIUM_WORKER_MAX_RSS_MB": "0", **extra_env}
    return subprocess.Popen([sys.executable, "-m", "consortium.jobs.worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_worker(p: subprocess.Popen[bytes]) -> None:
    """End a worker started by ``start_worker`` (SIGTERM; SIGKILL after 10 s)."""
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


PG_URL = os.environ.get("CONSORTIUM_TEST_POSTGRES_URL")


def pg_database() -> tuple[str, Any]:
    """A fresh PostgreSQL database (for one test module, or one test); ``drop()`` removes it.
    Lives here, not in conftest.py: ``from conftest import`` finds whichever conftest came first."""

    import sqlalchemy as sa

    if PG_URL is None:
        raise RuntimeError("CONSORTIUM_TEST_POSTGRES_URL is not set")
    name = f"consortium_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@dataclass
class RayCluster:
    """A local Ray cluster started by ``start_ray_cluster`` (tests/ray's fixture, bench/bench_ray.py)."""

    address: str  # the GCS address, 127.0.0.1:port: what CONSORTIUM_RAY_ADDRESS and ray.init take
    cpus: int
    temp_dir: Path
    proc: subprocess.Popen[bytes] = field(repr=False)
    started_s: float = 0.0  # how long `ray start` took to say the runtime started

    @property
    def env(self) -> dict[str, str]:
        return {"CONSORTIUM_EXECUTOR": "ray", "CONSORTIUM_RAY_ADDRESS": self.address, "RAY_ADDRESS": self.address,
                "RAY_USAGE_STATS_ENABLED": "0"}


def start_ray_cluster(cpus: int = 2, object_store_bytes: int = 200_000_000) -> RayCluster:
    """``ray start --head --block`` in a private temp dir, every port it would otherwise fix (GCS,
    client server, dashboard, agents) taken free so that two clusters on one machine do not
    collide; returns once the runtime says it started. Stop it with ``stop_ray_cluster``."""
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's unix socket paths must stay under 107 bytes
    port = free_port()
    flags = {"--num-cpus": cpus, "--object-store-memory": object_store_bytes, "--include-dashboard": "false",
             "--node-ip-address": "127.0.0.1", "--port": port, "--temp-dir": temp / "r"}
    for name in ("ray-client-server", "dashboard", "dashboard-agent-listen", "dashboard-agent-grpc",
                 "runtime-env-agent", "metrics-export"):
        flags[f"--{name}-port"] = free_port()
    cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--disable-usage-stats",
           *[str(x) for kv in flags.items() for x in kv]]
    log_path = temp / "ray-start.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    t0 = time.monotonic()
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=temp, env=env,
                                start_new_session=True)
    cluster = RayCluster(f"127.0.0.1:{port}", cpus, temp, proc)
    deadline = t0 + 60
    while b"Ray runtime started" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_ray_cluster(cluster)
            raise RuntimeError("ray start failed:\n" + log_path.read_text()[-3000:])
        time.sleep(0.05)
    cluster.started_s = time.monotonic() - t0
    return cluster


def stop_ray_cluster(cluster: RayCluster) -> None:
    """SIGTERM to the cluster's own process group (``ray start --block`` takes its raylet, GCS and
    workers down with it; SIGKILL to what is left after 20 s), then its temp dir. Never ``ray
    stop``: it ends every Ray process of the machine's user, other sessions' clusters too."""
    import shutil
    import signal

    try:
        pgid = os.getpgid(cluster.proc.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None:
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            cluster.proc.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cluster.proc.wait(10)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PASSWORD = "correct horse battery"  # every ``World.actor`` user's password


@functools.cache
def password_hash() -> str:
    """``PASSWORD``'s argon2 hash, computed once per process: each user still gets a real hash that
    logging in verifies, without a fresh 0.1-0.2 s hash for each of the suite's users."""
    from consortium.governance.secrets import hash_password

    return hash_password(PASSWORD)


@dataclass
class Actor:
    """A user acting in one organization through a real API token."""

    org: str
    org_id: str
    user_id: str
    email: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


class World:
    """Creates organizations and members through the services (the same code the API calls).
    Lives here, not in conftest.py, for tests that build their own hub (``from support import World``)."""

    def __init__(self, services: object) -> None:
        self.svc = services

    def org(self, name: str | None = None) -> str:
        from consortium.governance import identity
        from consortium.store.db import transaction

        name = name or f"org-{secrets.token_hex(3)}"
        with transaction(self.svc.session_factory) as s:  # type: ignore[attr-defined]
            identity.create_org(s, self.svc.keys, name, name.title())  # type: ignore[attr-defined]
        return name

    def actor(self, org: str, role: str = "owner", operator: bool = False) -> Actor:
        from consortium.governance import credentials, identity
        from consortium.governance.roles import Role
        from consortium.store.db import transaction

        with transaction(self.svc.session_factory) as s:  # type: ignore[attr-defined]
            o = identity.org_by_name(s, org)
            email = f"{role}-{secrets.token_hex(3)}@{org}.example"
            u = identity.create_user(s, email, email, PASSWORD, is_operator=operator, password_hash=password_hash())
            identity.add_member(s, o.id, u.id, Role(role))
            p = credentials.principal_for(u, o, Role(role), "test")
            _, token = credentials.create_token(s, p, "test", Role(role), 30)
        return Actor(org, o.id, u.id, email, role, token)
