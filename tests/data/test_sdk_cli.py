"""The SDK and the CLI against a real hub over HTTP; and the demo seeding step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from data_files import csv_bytes

from consortium import Client
from consortium.errors import InvalidInput, NotFound, PermissionDenied

BIN = Path(sys.executable).parent / "consortium"


def cli(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([str(BIN), *args], env={**os.environ, **env, "COLUMNS": "200"}, capture_output=True,
                       text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_sdk_upload_preview_download_and_samples(live_url: str, world: Any, tmp_path: Path) -> None:
    a, b = world.actor(world.org()), world.actor(world.org())
    ca, cb = Client(live_url, a.token), Client(live_url, b.token)
    f = tmp_path / "people.csv"
    f.write_bytes(csv_bytes(50))
    seen: list[int] = []
    v = ca.datasets.upload(f, "people", target="label", progress=lambda sent, total: seen.append(sent))
    assert v["version"] == 1 and v["rows"] == 50 and seen[-1] == f.stat().st_size
    assert ca.datasets.get("people")["full_name"] == f"{a.org}/people"
    out = ca.datasets.download("people", tmp_path / "back.csv")
    assert out.read_bytes() == f.read_bytes()
    with pytest.raises(NotFound):
        cb.datasets.preview(f"{a.org}/people")
    ca.grants.create("dataset", f"{a.org}/people", "metadata", grantee_org=b.org)
    assert cb.datasets.preview(f"{a.org}/people")["rows_preview"] is None
    with pytest.raises(PermissionDenied):
        cb.datasets.download(f"{a.org}/people", tmp_path)
    with pytest.raises(InvalidInput) as e:
        ca.datasets.upload(f, "people", target="nope")
    assert "'nope'" in str(e.value)

    parts = [ca.datasets.import_sample("breast_cancer", "bc", partitions=2, part=k)[0] for k in (1, 2)]
    assert all(p["created"] for p in parts)
    assert ca.datasets.versions("bc")[-1]["version"] == 2  # part 2 became version 2 of the same dataset
    with pytest.raises(PermissionDenied):
        ca.datasets.import_sample("iris", partitions=2, to_orgs=[a.org, b.org])
    assert {s["name"] for s in ca.datasets.samples()} >= {"digits", "breast_cancer"}


def test_cli_upload_preview_and_import_across_orgs(live_url: str, world: Any, tmp_path: Path) -> None:
    orgs = [world.org() for _ in range(3)]
    op = world.actor(orgs[0], "owner", operator=True)
    env = {"CONSORTIUM_CONFIG": str(tmp_path / "cli.json")}
    cli(["login", "--url", live_url, "--token", op.token], env)
    f = tmp_path / "t.csv"
    f.write_bytes(csv_bytes(20))
    out = cli(["datasets", "upload", str(f), "--name", "trial", "--target", "label"], env).stdout
    assert f"{orgs[0]}/trial" in out and "version 1" in out and "class balance" in out
    out = cli(["datasets", "preview", "trial", "--rows", "2"], env).stdout
    assert "first rows" in out and "north" in out
    bad = cli(["datasets", "upload", str(f), "--name", "trial", "--target", "missing"], env, check=False)
    assert bad.returncode == 1 and "'missing'" in bad.stderr
    res = cli(["datasets", "import-sample", "breast_cancer", "--name", "bc", "--skew", "label",
               "--to-orgs", ",".join(orgs), "--json"], env).stdout
    rows = json.loads(res)
    assert [r["org"] for r in rows] == orgs and sum(r["rows"] for r in rows) == 569
    listed = cli(["datasets", "list", "--json"], env).stdout
    assert f"{orgs[0]}/bc" in listed and f"{orgs[1]}/bc" not in listed  # the others' are not shared


def test_sdk_and_cli_delete(live_url: str, world: Any, tmp_path: Path) -> None:
    admin = world.actor(world.org(), "admin")
    c = Client(live_url, admin.token)
    f = tmp_path / "d.csv"
    for n in (10, 11):
        f.write_bytes(csv_bytes(n))
        c.datasets.upload(f, "doomed", target="label")
    assert c.datasets.delete("doomed", version=1)["versions"] == [1]
    assert [v["version"] for v in c.datasets.versions("doomed")] == [2]
    env = {"CONSORTIUM_CONFIG": str(tmp_path / "cli.json")}
    cli(["login", "--url", live_url, "--token", admin.token], env)
    no = subprocess.run([str(BIN), "datasets", "delete", "doomed"], env={**os.environ, **env}, input="n\n",
                        capture_output=True, text=True, timeout=120)
    assert no.returncode == 1 and "nothing deleted" in no.stdout
    assert c.datasets.get("doomed")["versions"] == 1
    out = cli(["datasets", "delete", "doomed", "--yes"], env).stdout
    assert f"deleted {admin.org}/doomed" in out and "versions: 2" in out
    with pytest.raises(NotFound):
        c.datasets.get("doomed")


def test_demo_seeds_datasets_once(services: Any) -> None:
    from consortium.data import catalog
    from consortium.demo import DEMO_ORGS, seed_demo
    from consortium.store.db import transaction

    first = seed_demo(services)
    again = seed_demo(services)
    assert first["datasets"] == again["datasets"]
    with transaction(services.session_factory) as s:
        sizes = []
        for org, _, _ in DEMO_ORGS:
            ds = catalog.find(s, org, "breast-cancer")
            assert ds is not None and len(catalog.versions(s, ds)) == 1
            sizes.append(catalog.version(s, ds).row_count)
        digits = catalog.find(s, DEMO_ORGS[0][0], "digits")
        assert digits is not None and catalog.version(s, digits).schema["image_shape"] == [1, 8, 8]
    assert sum(sizes) == 569 and max(sizes) - min(sizes) <= 1
