"""Helpers shared by tests (import as ``from support import ...``; ``tests/`` is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
    adds variables, e.g. ``CONSORTIUM_FEDERATION_ENGINE="simulation"``."""
    env = {**os.environ, "CONSORTIUM_HOME": str(settings.home), "CONSORTIUM_DATABASE_URL": settings.database_url,
           "CONSORTIUM_JOB_LEASE_S": str(lease_s), "CONSORTIUM_HEARTBEAT_S": "1", "OMP_NUM_THREADS": "1",
           **extra_env}
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
    import secrets

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
