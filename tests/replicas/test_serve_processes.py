"""``consortium serve`` as operations run it: ``--http-workers 2`` serves from two processes on one
port, and SIGTERM drains: an upload still streaming when the signal arrives completes and is
stored, then the worker processes and the hub exit. Real processes on SQLite, one start."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hubcluster import CLI, free_port
from support import wait_for

pytestmark = pytest.mark.skipif(not CLI.exists(), reason="the consortium command is not installed next to this Python")


def _seed(home: Path) -> str:
    """An organization and an owner token in a fresh home (what the served hub will read)."""
    from support import World

    from consortium.config import Settings
    from consortium.services import Services

    svc = Services.start(Settings(home=home))
    try:
        w = World(svc)
        return w.actor(w.org("drain"), "owner").token
    finally:
        svc.close()


def _serve(home: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "CONSORTIUM_HOME": str(home), "CONSORTIUM_PORT": str(port), "OMP_NUM_THREADS": "1"}
    env.pop("CONSORTIUM_DATABASE_URL", None)
    log = open(home / "serve.log", "ab")
    hub = subprocess.Popen([str(CLI), "serve", "--job-workers", "0", *args], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if hub.poll() is not None:
            return True
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:  # each HTTP worker is a spawned process importing the whole hub: slow on a loaded machine
        wait_for(up, 150, what="the hub to answer")
        assert hub.poll() is None, (home / "serve.log").read_text()[-3000:]
    except BaseException:
        _stop(hub)
        raise
    return hub, url


def _stop(hub: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server (its supervisor ends its workers), SIGKILL the group if it hangs."""
    workers = _children(hub.pid)
    hub.terminate()
    try:
        hub.wait(30)
    except subprocess.TimeoutExpired:
        for pid in [hub.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        hub.wait(10)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    h = tmp_path_factory.mktemp("serve") / "home"
    yield h, _seed(h)


def _stored(home: Path, dataset: str) -> str:
    """The checksum of the dataset's first version, as the hub's database holds it."""
    from sqlalchemy import select

    from consortium.config import Settings
    from consortium.services import Services
    from consortium.store.tables.data import Dataset, DatasetVersion

    svc = Services.start(Settings(home=home))
    try:
        with svc.session_factory() as s:
            v = s.scalars(select(DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                          .where(Dataset.name == dataset, DatasetVersion.version == 1)).one()
            return v.checksum.removeprefix("sha256:")
    finally:
        svc.close()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_http_workers_serve_from_two_processes_and_sigterm_drains(home: tuple[Path, str]) -> None:
    path, token = home
    hub, url = _serve(path, "--http-workers", "2")
    auth = {"authorization": f"Bearer {token}"}
    try:
        wait_for(lambda: len(_children(hub.pid)) >= 2, 30, what="two HTTP worker processes")
        workers = _children(hub.pid)
        codes = [httpx.get(f"{url}/api/v1/me", headers=auth, timeout=10).status_code  # new connections
                 for _ in range(10)]
        assert codes == [200] * 10
        sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield b"x,label\n"
            for i in range(20):
                if i == 5:
                    sent.set()  # the SIGTERM goes out now, mid-body
                time.sleep(0.1)
                yield b"%d,%d\n" % (i, i % 2)

        result: dict[str, httpx.Response] = {}
        t = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
            f"{url}/api/v1/datasets/drain/slow/versions/upload", content=slow_body(), headers=auth, timeout=30)))
        t.start()
        assert sent.wait(10)
        hub.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status_code == 201, result["r"].text  # drained, not cut off
        assert hub.wait(30) == 0  # uvicorn's supervisor: its workers stopped cleanly
    finally:
        if hub.poll() is None:
            _stop(hub)
    wait_for(lambda: not any(_alive(w) for w in workers), 10, what="the HTTP worker processes to exit")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)
    expected = b"x,label\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(20))
    assert _stored(path, "slow") == hashlib.sha256(expected).hexdigest()  # durable, not lost with the process
