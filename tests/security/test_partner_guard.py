"""What a partner site can reach of the hub's federation processes (issue: trust against hostile
partners). A site that joins a job can reach the job's SuperLink, and holds the hub's CA; Flower
1.42 serves that address's Control and Runtime APIs without authentication, so a site could start
a run of its own app there (its ServerApp's code run on the hub's machine, its ClientApp's sent to
every site) or take a run's ServerApp token. The SuperLink answers other hosts on its Fleet API
only (``engine.superlink``), and a site's node loads no ClientApp but this package's
(``warm_exec.clientapp_loader``). With a real SuperLink refusing a real ``flwr run`` from another
host: ``test_multisite_netns.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from flwr.clientapp.client_app import LoadClientAppError

from consortium.federation.engine.superlink import FleetOnlyForOthers, local_hosts
from consortium.federation.engine.warm_exec import CLIENTAPP, SERVERAPP, clientapp_loader, only_our_serverapp


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"flower"})


def _status(client_host: str, path: str, local: str = "") -> tuple[int, str]:
    return asyncio.run(_ask(client_host, path, local))


async def _ask(client_host: str, path: str, local: str) -> tuple[int, str]:
    app = FleetOnlyForOthers(_echo, local_hosts(local))
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://hub") as c:
        r = await c.post(path)
    return r.status_code, r.text


@pytest.mark.parametrize("path", ["/v1/control/start-run", "/v1/control/list-runs", "/v1/runtime/acquire-task",
                                  "/v1/runtime/pull-messages", "/v1/other", "/"])
def test_another_host_gets_403_on_everything_but_the_fleet_api(path: str) -> None:
    status, body = _status("10.9.0.2", path, local="10.9.0.1")
    assert status == 403 and "only the Fleet API" in body, body


@pytest.mark.parametrize("client", ["127.0.0.1", "127.0.0.9", "::1", "10.9.0.1"])
def test_this_machine_reaches_every_api(client: str) -> None:
    assert _status(client, "/v1/control/start-run", local="10.9.0.1") == (200, "flower")


def test_another_host_reaches_the_fleet_api_and_the_health_check() -> None:
    assert _status("10.9.0.2", "/v1/fleet/pull-messages") == (200, "flower")
    assert _status("10.9.0.2", "/health") == (200, "flower")


def _project(home: Path, clientapp: str, files: dict[str, str] | None = None,
             serverapp: str = "x:y") -> tuple[str, str, str]:
    """An installed FAB as Flower lays it out under ``FLWR_HOME`` (``flwr install``)."""
    fab_id, version, fab_hash = "partner/app", "1.0.0", "ab" * 32
    from flwr.common.config import get_project_dir

    d = Path(get_project_dir(fab_id, version, fab_hash))  # under FLWR_HOME
    d.mkdir(parents=True)
    (d / "pyproject.toml").write_text(f'[project]\nname = "app"\nversion = "1.0.0"\n\n[tool.flwr.app]\n'
                                      f'publisher = "partner"\n\n[tool.flwr.app.components]\n'
                                      f'clientapp = "{clientapp}"\nserverapp = "{serverapp}"\n')
    for name, text in (files or {}).items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    return fab_id, version, fab_hash


@pytest.mark.parametrize(("clientapp", "files", "says"), [
    ("rogue.apps:client", {"rogue/apps.py": "import os; os.system('id')"}, "rogue.apps:client"),
    (CLIENTAPP, {"consortium/federation/app/client_app.py": "pwned = True"}, "carries code"),
    (CLIENTAPP, {"sitecustomize.pth": "import os"}, "carries code"),
])
def test_a_site_refuses_an_app_that_names_another_clientapp_or_carries_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clientapp: str, files: dict[str, str], says: str) -> None:
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    ids = _project(tmp_path, clientapp, files)
    with pytest.raises(LoadClientAppError, match="runs only Consortium's ClientApp") as e:
        clientapp_loader()(*ids)
    assert says in str(e.value)


def test_a_site_loads_the_installed_clientapp_for_the_hubs_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from consortium.federation.app.client_app import app

    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    assert clientapp_loader(default_app_ref="", app_path=None, multi_app=True)(*_project(tmp_path, CLIENTAPP)) is app


@pytest.mark.parametrize(("serverapp", "files", "says"), [
    ("rogue.apps:server", {"rogue/apps.py": "import os; os.system('id')"}, "rogue.apps:server"),
    (SERVERAPP, {"consortium/federation/app/server_app.py": "pwned = True"}, "carries code"),
])
def test_the_hubs_serverapp_runner_refuses_an_app_that_is_not_ours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serverapp: str, files: dict[str, str], says: str) -> None:
    """The warm process that forks the hub's ServerApps runs only this package's, whoever started
    the run (the SuperLink's Control API already answers this machine only)."""
    import importlib

    from flwr.common.config import get_project_dir

    flower = importlib.import_module("flwr.superlink.runtime.run_serverapp")
    called: list[str] = []
    monkeypatch.setitem(flower.__dict__, "run_", lambda **kw: called.append(kw["server_app_attr"]))
    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    only_our_serverapp()
    run = flower.__dict__["run_"]
    project = str(get_project_dir(*_project(tmp_path, CLIENTAPP, files, serverapp=serverapp)))
    with pytest.raises(RuntimeError, match="runs only Consortium's ServerApp") as e:
        run(grid=None, context=None, server_app_dir=project, server_app_attr=serverapp)
    assert says in str(e.value) and called == []
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "hub"))
    ours = str(get_project_dir(*_project(tmp_path / "hub", CLIENTAPP, serverapp=SERVERAPP)))
    run(grid=None, context=None, server_app_dir=ours, server_app_attr=SERVERAPP)
    assert called == [SERVERAPP]  # the hub's own app goes through to Flower's runner
