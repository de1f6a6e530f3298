"""Shared fixtures: a real hub (app + database) on SQLite, and on PostgreSQL when
``CONSORTIUM_TEST_POSTGRES_URL`` is set (e.g. postgresql://postgres@127.0.0.1:5432/postgres)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import World, free_port

PG_URL = os.environ.get("CONSORTIUM_TEST_POSTGRES_URL")
ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``one_backend`` (long real-process runs whose database work other tests cover
    on both backends) run once: on PostgreSQL when it is configured, else on SQLite."""
    if not PG_URL:
        return
    keep, drop = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        skip = (item.get_closest_marker("one_backend") is not None and spec is not None
                and spec.params.get("backend") == "sqlite")
        (drop if skip else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=BACKENDS, scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from consortium.config import Settings

    home = tmp_path_factory.mktemp(f"home-{backend}")
    drop = None
    if backend == "postgres":
        url, drop = pg_database()
    else:
        url = f"sqlite:///{home / 'consortium.db'}"
    yield Settings(home=home, database_url=url, max_body_bytes=64 * 1024, max_upload_bytes=4 * 1024 * 1024)
    if drop:
        drop()


@pytest.fixture(scope="module")
def services(settings: object) -> Iterator[object]:
    from consortium.services import Services

    svc = Services.start(settings)  # type: ignore[arg-type]
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def app(services: object) -> object:
    from consortium.web import create_app

    return create_app(services.settings, services=services)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def http(app: object) -> Iterator[object]:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:  # type: ignore[arg-type]
        yield c


@pytest.fixture(scope="module")
def world(services: object) -> World:
    return World(services)


@pytest.fixture(scope="module")
def live_url(app: object) -> Iterator[str]:
    """The app served by a real uvicorn server on loopback (for the SDK and CLI)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(10)


from support import pg_database, start_worker, stop_worker, wait_for  # noqa: E402, F401 - wait_for re-exported for older imports


@pytest.fixture(scope="module")
def worker(settings: object) -> Iterator[object]:
    """A real job worker process on the module's hub database and data directory."""
    p = start_worker(settings)
    yield p
    stop_worker(p)

