"""Several real hub replicas (``consortium serve`` processes) on one scratch PostgreSQL database
and one S3 server (``rclone serve s3``), behind a real load balancer (Debian's haproxy), for the
replica test and the replica benchmark. Import as ``from hubcluster import ...`` (``tests/`` is on
``sys.path``; the benchmark puts it there).

Each replica has its own data directory, as it would on its own machine; what they share is
what a deployment shares: the database, the object store, the master key and the secret key.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from s3support import S3Server, s3_server
from support import free_port

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
CLI = Path(sys.executable).parent / "consortium"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str | None:
    """The PostgreSQL server to make scratch databases on, if one answers."""
    url = os.environ.get("CONSORTIUM_TEST_POSTGRES_URL", DEFAULT_PG)
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with eng.connect():
            pass
        eng.dispose()
    except Exception:  # noqa: BLE001 - the caller skips with the reason
        return None
    return url


def missing() -> str | None:
    """Why a cluster cannot run here (None: it can)."""
    if HAPROXY is None:
        return "haproxy is not installed (make lb installs Debian's)"
    if not CLI.exists():
        return "the consortium command is not installed next to this Python"
    if postgres_admin_url() is None:
        return "no PostgreSQL answers at CONSORTIUM_TEST_POSTGRES_URL or 127.0.0.1:5432"
    return None


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"consortium_replicas_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Cluster:
    urls: list[str]  # each replica, directly
    lb: str  # the load balancer in front of them
    env: dict[str, str]  # the settings every replica shares
    owner: str  # a token of the organization that owns the deployment ("alpha")
    caller: str  # a member token of another organization ("beta")
    caller_org: str
    deployment: str
    rows: list[list[float]]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    s3: S3Server | None = None
    logs: list[Path] = field(default_factory=list)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in self.logs if p.exists())


def _seed(env: dict[str, str], home: Path) -> dict[str, Any]:
    """Organizations, tokens, a model and its deployment, made in this process on the shared
    database and object store (the model's blob goes to S3, sealed)."""
    from consortium.config import Settings
    from consortium.demo.models import softmax_onnx
    from consortium.governance import credentials, identity
    from consortium.governance.roles import Role
    from consortium.registry import models as reg
    from consortium.services import Services
    from consortium.serving.hub import deployments as deps
    from consortium.store.db import transaction

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the S3 credentials, read by boto3
    try:
        import numpy as np

        svc = Services.start(Settings(home=home))
        try:
            out: dict[str, Any] = {}
            with transaction(svc.session_factory) as s:
                for org, role in (("alpha", Role.owner), ("beta", Role.member)):
                    o = identity.create_org(s, svc.keys, org, org.title())
                    u = identity.create_user(s, f"{role.value}@{org}.example", org, "correct horse battery")
                    identity.add_member(s, o.id, u.id, role)
                    p = credentials.principal_for(u, o, role, "replicas")
                    _, out[org] = credentials.create_token(s, p, "replicas", role, 30)
                    out[f"{org}_id"] = o.id
                    if org == "alpha":
                        rng = np.random.default_rng(0)
                        reg.register_version(s, p, "iris", onnx=softmax_onnx(rng.normal(size=(4, 3)),
                                                                             rng.normal(size=3)),
                                             blobs=svc.blobs, task="classification", class_names=["a", "b", "c"])
                        served = reg.to_serve(s, p, "iris")
                        deps.create_deployment(s, p, "iris-live", served.model, version_id=served.version_id,
                                               alias=served.alias)
        finally:
            svc.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


HAPROXY_CFG = """\
global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend hub
    bind 127.0.0.1:{port}
    default_backend hubs
backend hubs
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


@contextmanager
def cluster(tmp: Path, replicas: int = 2, **settings: str) -> Iterator[Cluster]:
    """``replicas`` hub processes on a scratch PostgreSQL database and an S3 server, haproxy in
    front (round robin, health-checked on /readyz); everything stops when the block ends.
    ``settings`` are extra CONSORTIUM_* variables (``WORKERS="0"`` style: the part after the prefix)."""
    admin = postgres_admin_url()
    if admin is None or HAPROXY is None:
        raise RuntimeError(missing() or "cannot start a cluster")
    with ExitStack() as stack:
        db_url = stack.enter_context(scratch_database(admin))
        s3 = stack.enter_context(s3_server(tmp / "s3"))
        env = {**s3.env("consortium", "blobs"), "CONSORTIUM_DATABASE_URL": db_url,
               "CONSORTIUM_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
               "CONSORTIUM_SECRET_KEY": secrets.token_urlsafe(32), "CONSORTIUM_WORKERS": "0",
               "CONSORTIUM_MONITORING": "off",
               **{f"CONSORTIUM_{k.upper()}": v for k, v in settings.items()}}
        seeded = _seed(env, tmp / "seed-home")
        ports = [free_port() for _ in range(replicas)]
        procs: list[subprocess.Popen[bytes]] = []
        logs = [tmp / f"replica-{i}.log" for i in range(replicas)]
        lb_port = free_port()
        c = Cluster([f"http://127.0.0.1:{p}" for p in ports], f"http://127.0.0.1:{lb_port}", env,
                    seeded["alpha"], seeded["beta"], "beta", "iris-live", [[5.1, 3.5, 1.4, 0.2]],
                    procs, s3, logs + [tmp / "haproxy.log"])

        def stop() -> None:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)

        stack.callback(stop)
        for i, port in enumerate(ports):
            penv = {**os.environ, **env, "CONSORTIUM_HOME": str(tmp / f"home-{i}"), "CONSORTIUM_PORT": str(port),
                    "CONSORTIUM_HOST": "127.0.0.1", "OMP_NUM_THREADS": "1"}
            with open(logs[i], "wb") as log:
                procs.append(subprocess.Popen([str(CLI), "serve"], env=penv, stdout=log, stderr=log))
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p} check inter 500ms fall 2 rise 1"
                            for i, p in enumerate(ports))
        cfg = tmp / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=lb_port, servers=servers))
        deadline = time.monotonic() + 90
        while not all(_ready(u) for u in c.urls):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError("a replica did not become ready:\n" + c.log_tail())
            time.sleep(0.2)
        with open(tmp / "haproxy.log", "wb") as log:
            procs.append(subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"], stdout=log, stderr=log))
        while not _ready(c.lb):
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start:\n" + c.log_tail())
            time.sleep(0.1)
        yield c
