"""Node datasets: a node's advertisement (schema and statistics) published to the catalog with
``consortium node --publish``. The hub never holds or reads their rows: preview rows, download and
centralized training are refused with the reason; federated jobs name them like any dataset, and
one whose columns differ from the others' is refused naming the column, at submission (the
catalog's schemas) and at run time (a site node's local dataset against the job's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fl_helpers import finished_job, two_orgs_sharing_bc
from support import start_worker, stop_worker

from consortium.data.samples import load_sample, partition
from consortium.federation.app.datasets import save_dataset
from consortium.federation.node.agent import NodeAgent, describe_one
from consortium.sdk.client import Client
from consortium.store.db import transaction

API = "/api/v1"


def advertised(tmp_path: Path, name: str = "bc", drop: str | None = None) -> dict[str, Any]:
    """What `consortium node` advertises for a breast_cancer half (minus column ``drop``)."""
    data = partition(load_sample("breast_cancer"), 2, seed=0)[1]
    if drop:
        data = type(data).from_frame(data.frame.drop(columns=[drop]), target="target")
    save_dataset(tmp_path, name, data)
    return describe_one(tmp_path, name)


def publish(http: Any, actor: Any, datasets: list[dict[str, Any]], node: str = "site") -> Any:
    return http.post(f"{API}/nodes", json={"name": node, "datasets": datasets,
                                           "agent": {"publish": True, "host": "elsewhere"}}, headers=actor.headers)


def test_a_published_node_dataset_is_schema_and_statistics_only(http: Any, world: Any, tmp_path: Path) -> None:
    a = world.actor(world.org())
    r = publish(http, a, [advertised(tmp_path)])
    assert r.status_code == 201, r.text
    v = http.get(f"{API}/datasets/{a.org}/bc/versions/1", headers=a.headers).json()
    assert v["format"] == "node" and v["rows"] == 284 and v["schema"]["node"] == "site"
    assert {"min", "max", "mean"} <= set(v["schema"]["columns"][0]) and "data" not in v["schema"]
    assert publish(http, a, [advertised(tmp_path)]).status_code == 201  # the same advertisement: no new version
    assert http.get(f"{API}/datasets/{a.org}/bc", headers=a.headers).json()["latest_version"] == 1
    p = http.get(f"{API}/datasets/{a.org}/bc/versions/1/preview", headers=a.headers).json()
    assert p["rows_preview"] is None and "rows stay at node site" in p["rows_hidden"]
    r = http.get(f"{API}/datasets/{a.org}/bc/versions/1/download", headers=a.headers)
    assert r.status_code == 422 and "node dataset" in r.text and "federated" in r.text, r.text
    recipe = {"name": "central", "data": {"dataset": f"{a.org}/bc", "target": "target"},
              "model": {"type": "logistic"}}
    r = http.post(f"{API}/jobs", json={"recipe": recipe}, headers=a.headers)
    assert r.status_code == 422 and "is a node dataset" in r.text and "node site" in r.text, r.text
    # the publication is audited with the node's registration
    trail = http.get(f"{API}/audit", params={"limit": 500}, headers=a.headers).json()["items"]
    assert [e["details"]["published"] for e in trail if e["action"] == "register_node"] == [[], ["bc v1"]]


def test_a_dataset_whose_columns_differ_is_refused_naming_the_column(http: Any, world: Any,
                                                                     tmp_path: Path) -> None:
    a, b = world.actor(world.org()), world.actor(world.org())
    r = http.post(f"{API}/datasets/import-sample", headers=a.headers,
                  json={"sample": "breast_cancer", "name": "bc", "partitions": 2, "part": 1, "seed": 0})
    assert r.status_code == 201, r.text
    assert publish(http, b, [advertised(tmp_path, drop="mean_area")]).status_code == 201
    r = http.post(f"{API}/grants", json={"resource_type": "dataset", "resource": f"{b.org}/bc",
                                         "permission": "compute", "grantee_org": a.org}, headers=b.headers)
    assert r.status_code == 201, r.text
    recipe = {"name": "fed", "data": {"target": "target"}, "model": {"type": "logistic"},
              "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 1}}
    r = http.post(f"{API}/jobs", json={"recipe": recipe}, headers=a.headers)
    assert r.status_code == 422, r.text
    assert f"{b.org}/bc lacks column 'mean_area'" in r.json()["error"]["message"], r.text


@pytest.mark.one_backend  # a worker process; the database work is covered on both backends above
def test_a_site_node_with_other_columns_fails_the_job_naming_it(http: Any, live_url: str, world: Any,
                                                                settings: Any, tmp_path: Path) -> None:
    a, b = two_orgs_sharing_bc(http, world)  # both hold hub datasets `bc` with the same columns
    data = partition(load_sample("breast_cancer"), 2, seed=0)[1]
    save_dataset(tmp_path, "bc", type(data).from_frame(data.frame.drop(columns=["worst_area"]), target="target"))
    agent = NodeAgent(Client(live_url, b.token), "odd-site", tmp_path, interval=0.5)
    agent.register()
    worker = start_worker(settings)
    try:
        recipe = {"name": "odd", "data": {"target": "target"}, "model": {"type": "logistic"},
                  "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 1}}
        job = http.post(f"{API}/jobs", json={"recipe": recipe}, headers=a.headers).json()
        final = finished_job(http, a, job["id"], 120)
        assert final["state"] == "failed"
        assert "node odd-site" in final["error"] and "lacks column 'worst_area'" in final["error"], final["error"]
    finally:
        agent.close()
        stop_worker(worker)


@pytest.mark.slow
@pytest.mark.one_backend  # a real node agent against the served hub; the withdrawal's database work is covered on both
def test_withdrawing_a_node_dataset_version_deletes_the_sites_copy(http: Any, live_url: str, world: Any,
                                                                   services: Any, tmp_path: Path) -> None:
    """The node stops offering the withdrawn version and deletes its registered copy (renamed out
    of the datasets, then removed; a crash between is finished at the next start), never the
    user's source file; it reports the deletion, which the withdrawal and the audit record."""
    from typer.testing import CliRunner

    from consortium.cli.main import app
    from consortium.federation.app.datasets import list_datasets
    from consortium.store.tables.audit import AuditEvent

    a = world.actor(world.org())
    site, source = tmp_path / "site", tmp_path / "source.csv"
    partition(load_sample("breast_cancer"), 2, seed=0)[1].frame.to_csv(source, index=False)
    r = CliRunner().invoke(app, ["nodes", "add-data", str(site), "bc", str(source), "--target", "target"])
    assert r.exit_code == 0, r.output
    (site / ".withdrawn-old-wd_x").mkdir()  # a deletion a crash interrupted
    agent = NodeAgent(Client(live_url, a.token), "site", site, interval=0.5, publish=True)
    agent.register()
    assert not (site / ".withdrawn-old-wd_x").exists()
    assert http.get(f"{API}/datasets/{a.org}/bc", headers=a.headers).json()["latest_version"] == 1
    r = http.post(f"{API}/datasets/{a.org}/bc/versions/1/withdraw", json={"mode": "stop", "reason": "Art. 17"},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    agent.beat()
    assert list_datasets(site) == [] and not (site / "bc").exists() and not list(site.glob(".withdrawn-*"))
    assert source.exists()  # the user's own file outside the node's directory stays
    assert agent.pending_deletions() == []  # reported
    node = http.get(f"{API}/nodes/site", headers=a.headers).json()
    assert node["datasets"] == [] and node["withdrawn"] == []
    w = http.get(f"{API}/withdrawals/{wid}", headers=a.headers).json()
    assert [(c["node"], c["dataset"]) for c in w["node_copies"]] == [("site", "bc")], w
    with transaction(services.session_factory) as s:
        ev = s.query(AuditEvent).filter_by(action="withdrawal.node_copy_deleted", actor_org_id=a.org_id).one()
        assert json.loads(ev.details) == {"withdrawal": wid, "dataset": f"{a.org}/bc", "version": 1, "node": "site"}
        beat = s.query(AuditEvent).filter_by(action="heartbeat_node", actor_org_id=a.org_id).order_by(
            AuditEvent.seq.desc()).first()
        assert json.loads(beat.details)["deleted_withdrawn"] == [{"withdrawal": wid, "dataset": f"{a.org}/bc",
                                                                  "version": 1}]
    save_dataset(site, "bc", partition(load_sample("breast_cancer"), 2, seed=0)[0])  # other rows, same name
    agent.beat()
    assert list_datasets(site) == ["bc"]  # not the withdrawn version: it stays, and is published anew
    assert http.get(f"{API}/datasets/{a.org}/bc", headers=a.headers).json()["latest_version"] == 2
