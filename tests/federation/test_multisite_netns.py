"""Sites as hosts: a hub and three site hosts as Linux network namespaces joined by veth links
(examples/multisite/multisite.py builds them). The hub serves HTTPS in its own namespace; each
organization's ``consortium node`` runs in its own, pins the hub's CA, keeps its rows in its own
directory and joins the job's SuperLink over TLS with its registered key. The job trains at all
three sites, and a marker planted in each site's CSV is nowhere under the hub's home (database,
blobs, logs, job files) nor in the hub's log."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sitemarks import found_in

from consortium.errors import Unavailable
from consortium.federation.engine.pki import ensure_pki
from consortium.sdk.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "multisite"))
import multisite

REASON = multisite.why_not()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=f"no network namespaces here: {REASON}"),
              pytest.mark.one_backend]  # its own hub on SQLite in a namespace; database work is covered elsewhere


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("multisite")
    c = multisite.Consortium(root)
    try:
        c.build()
        c.start_hub()
        needles: list[bytes] = []
        for i in range(len(multisite.SITES)):
            needles += multisite.site_csv(c.site_dir(i) / "rows.csv", i, secrets.randbelow(1 << 30))
            c.start_site(i, c.site_dir(i) / "rows.csv")
        multisite.grant_and_wait(c)
        hospital = c.client(multisite.SITES[0])
        job = hospital.jobs.submit(multisite.RECIPE)
        attack = _a_site_starts_its_own_run(c, root)  # while the job's SuperLink runs
        final = hospital.jobs.wait(job["id"], timeout_s=150)
        version = hospital.models.version("multisite", 1) if final["state"] == "succeeded" else None
        other_ca = ensure_pki(root / "other-ca").ca_cert  # a client pinning another CA is refused
        try:
            Client(c.url, c.tokens[multisite.SITES[0]], ca_cert=str(other_ca)).me()
            refused = ""
        except Unavailable as e:
            refused = str(e)
        c.stop("hub")  # its logs and database are complete
        yield {"c": c, "needles": needles, "job": final, "version": version, "refused": refused, "attack": attack}
    finally:
        c.close()


ROGUE_APP = {"pyproject.toml": """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "rogue"
version = "1.0.0"
description = "a partner's own app"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "partner"

[tool.flwr.app.components]
serverapp = "rogue.apps:server"
clientapp = "rogue.apps:client"

[tool.flwr.app.config]
""", "rogue/__init__.py": "", "rogue/apps.py": """import pathlib
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp
server = ServerApp()
client = ClientApp()

@server.main()
def main(grid, context):
    pathlib.Path(MARKER).write_text("the hub ran a partner's ServerApp")
"""}


def _a_site_starts_its_own_run(c: Any, root: Path) -> dict[str, Any]:
    """The first site, from its own host, with what its node was given (the SuperLink's address and
    the hub's CA, read from its SuperNode's command line), starts a run of its own app on the job's
    SuperLink and lists the runs there: Flower's Control API, which authenticates nobody."""
    import re
    import subprocess

    marker = root / "PWNED-by-a-partner"
    app = root / "rogue-app"
    for name, text in ROGUE_APP.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text.replace("MARKER", repr(str(marker))))
    site = str(c.site_dir(0))

    def link() -> tuple[str, str] | None:
        for cmd in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmd.read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "consortium.federation.engine.supernode" in argv and any(a.startswith(site) for a in argv):
                text = " ".join(argv)
                m, ca = re.search(r"--superlink (\S+)", text), re.search(r"--root-certificates (\S+)", text)
                if m and ca:
                    return m.group(1), ca.group(1)
        return None

    address, ca = multisite.Consortium.wait(link, 90, "the first site's SuperNode")
    home = root / "partner-flwr"
    home.mkdir()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "hub"\n\n[superlink.hub]\naddress = "{address}"\n'
                                      f'root-certificates = "{ca}"\n')
    out = {}
    calls = {"run": ["run", str(app), "hub", "--format", "json"], "ls": ["ls", "hub", "--format", "json"]}
    for what, args in calls.items():
        r = subprocess.run(["ip", "netns", "exec", c.site_ns(0), str(Path(sys.executable).parent / "flwr"), *args],
                           env={**c._env(), "FLWR_HOME": str(home)}, capture_output=True, text=True, timeout=120,
                           cwd=root)
        out[what] = r.stdout + r.stderr
    out["marker"] = marker
    return out


def test_a_site_cannot_start_runs_on_the_jobs_superlink(run: dict[str, Any]) -> None:
    attack = run["attack"]
    assert "/v1/control/start-run is not served to" in attack["run"], attack["run"]
    assert "/v1/control/list-runs is not served to" in attack["ls"], attack["ls"]
    assert not attack["marker"].exists(), "the hub ran a partner's ServerApp"
    assert run["job"]["state"] == "succeeded"  # the sites' Fleet API calls went on


def test_the_job_trains_at_all_three_sites(run: dict[str, Any]) -> None:
    job = run["job"]
    assert job["state"] == "succeeded", job.get("error")
    assert sorted(job["result"]["contributors"]) == sorted(multisite.SITES)
    assert "deployment" in job["result"]["engine"]
    rows = {d["owner"]: d for d in run["version"]["lineage"]["datasets"]}
    assert sorted(rows) == sorted(multisite.SITES)
    for i, org in enumerate(multisite.SITES):  # each site's node trained on its own rows and reported the count
        assert rows[org]["rows"] in (189, 190)
        assert f"node site-{i + 1} at the organization's site" in rows[org]["location"]


def test_the_hub_never_touched_a_sites_rows(run: dict[str, Any]) -> None:
    c, needles = run["c"], run["needles"]
    assert len(needles) == 2 * len(multisite.SITES)
    for i in range(len(multisite.SITES)):  # the marker is in each site's own directory (the search can fail)
        assert found_in(c.site_dir(i), needles[2 * i:2 * i + 2])
    assert (c.home / "consortium.db").exists()
    assert found_in(c.home, needles) == []  # database, blobs, logs, federation work files
    assert found_in(c.root / "hub.log", needles) == []
    assert not (c.home / "nodes").exists() or not any((c.home / "nodes").rglob("*.parquet"))


def test_the_nodes_reach_the_hub_only_over_https_with_its_ca(run: dict[str, Any]) -> None:
    c = run["c"]
    assert "certificate" in run["refused"].lower(), run["refused"]
    node_log = (c.root / "node-1.log").read_text()
    assert "registered" in node_log, node_log
    sn = list((c.site_dir(0) / ".logs").glob("supernode-*.log"))
    assert sn and "--insecure" not in sn[0].read_text()
    assert (c.site_dir(0) / ".node" / "supernode.key").stat().st_mode & 0o077 == 0
