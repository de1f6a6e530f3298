"""The owner's site checks its dataset policy again before it trains (issue 19 point 1): a job the
hub queued without its submission check (as a hub that skipped it would) is refused by the site's
own ClientApp, with the rules the node read from the hub through its own credential; the node
reports the refusal, which the hub audits against the dataset."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fl_helpers import finished_job, two_orgs_sharing_bc
from support import start_worker, stop_worker, wait_for

from consortium.data.samples import load_sample, partition
from consortium.errors import PermissionDenied
from consortium.federation.app import protocol as P
from consortium.federation.app import site_policy
from consortium.federation.app.datasets import save_dataset
from consortium.federation.node.agent import NodeAgent
from consortium.recipe import parse_recipe
from consortium.sdk.client import Client
from consortium.store.db import transaction


def _recipe(a: Any, b: Any, **fed: Any) -> dict[str, Any]:
    return {"name": "site", "data": {"target": "target"}, "process": [{"normalize": {}}],
            "model": {"type": "logistic"}, "train": {"lr": 0.05},
            "federated": {"datasets": [f"{a.org}/bc", f"{b.org}/bc"], "rounds": 1, **fed}}


def test_the_client_app_checks_what_it_is_sent(tmp_path: Path) -> None:
    policy = tmp_path / "policy-job_x.json"
    policy.write_text(json.dumps({"dataset": "bc", "max_epochs": 2, "max_rounds": 3, "dp_max_epsilon": 1.0}))
    cfg = {P.POLICY: str(policy)}
    ok = parse_recipe({"name": "r", "federated": {"datasets": ["a/x", "b/y"], "rounds": 3, "local_epochs": 2,
                                                  "dp": {"epsilon": 0.5}}})
    site_policy.enforce(cfg, ok, 100, server_round=3)
    with pytest.raises(PermissionDenied, match="max_rounds"):  # a hub sending more rounds than the recipe says
        site_policy.enforce(cfg, ok, 100, server_round=4)
    assert json.loads(site_policy.refusal_path(policy).read_text())["rules"] == ["max_rounds"]
    bad = parse_recipe({"name": "r", "federated": {"datasets": ["a/x", "b/y"], "rounds": 1, "local_epochs": 5}})
    with pytest.raises(PermissionDenied, match="dp_max_epsilon.*max_epochs"):
        site_policy.enforce(cfg, bad, 100)
    site_policy.enforce({}, bad, 100)  # no policy file: nothing to check


@pytest.mark.one_backend  # Flower processes at a site; the policy's database work is covered on both elsewhere
def test_site_refuses_a_job_the_hub_did_not_check(http: Any, live_url: str, world: Any, services: Any,
                                                 settings: Any, tmp_path: Path) -> None:
    from consortium.governance.credentials import resolve_token
    from consortium.jobs import queue
    from consortium.jobs.checks import check_training
    from consortium.store.tables.audit import AuditEvent

    a, b = two_orgs_sharing_bc(http, world)
    r = http.put(f"/api/v1/datasets/{b.org}/bc/policy", json={"max_epochs": 1}, headers=b.headers)
    assert r.status_code == 200, r.text
    recipe = _recipe(a, b, local_epochs=3, round_timeout_s=30)
    assert http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers).status_code == 403  # the hub's check
    with transaction(services.session_factory) as s:  # a hub that skipped it: queued straight away
        p = resolve_token(s, a.token)
        parsed = parse_recipe(recipe)
        resolved = check_training(s, p, parsed, "federated")
        job = queue.submit(s, org_id=p.org_id, user_id=p.user_id, kind="federated", name="site",
                           recipe=parsed.to_dict(), resolved=resolved)
        job_id = job.id
    site = tmp_path / "site-b"
    save_dataset(site, "bc", partition(load_sample("breast_cancer"), 2, seed=0)[1])
    _refused_at_the_site(http, live_url, settings, a, b, site, job_id)
    with transaction(services.session_factory) as s:
        ev = s.query(AuditEvent).filter_by(action="record_refusal", outcome="ok").order_by(
            AuditEvent.seq.desc()).first()
        assert ev is not None and ev.actor_org_id == b.org_id
        assert json.loads(ev.details)["job_id"] == job_id and json.loads(ev.details)["rules"] == ["max_epochs"]
    assert not (site / ".logs").exists() or "max_epochs" in "".join(
        f.read_text(errors="replace") for f in (site / ".logs").iterdir())


def _refused_at_the_site(http: Any, live_url: str, settings: Any, a: Any, b: Any, site: Path, job_id: str) -> None:
    """Run b's node on ``site`` and a worker until the job failed and the node reported its refusal."""
    agent = NodeAgent(Client(live_url, b.token), "site-b", site, interval=0.5)
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    worker = start_worker(settings)
    try:
        final = finished_job(http, a, job_id)
        assert final["state"] == "failed", final
        wait_for(lambda: job_id in agent.refused, 30, 0.2, "the node's refusal report")
    finally:
        agent.close()
        t.join(5)
        stop_worker(worker)


def test_the_sites_own_policy_is_the_floor_of_what_the_hub_sends(tmp_path: Path) -> None:
    """``consortium nodes add-data --policy`` / ``nodes policy`` keep the site's rules where the hub
    never writes; an invalid rule set is refused naming the rule."""
    from typer.testing import CliRunner

    from consortium.cli.main import app
    from consortium.federation.node import local_policy

    site, rules = tmp_path / "site", tmp_path / "rules.json"
    csv = tmp_path / "bc.csv"
    load_sample("breast_cancer").frame.head(100).to_csv(csv, index=False)
    rules.write_text(json.dumps({"max_epochs": 1, "min_rows": 50}))
    run = CliRunner().invoke
    r = run(app, ["nodes", "add-data", str(site), "bc", str(csv), "--target", "target", "--policy", str(rules)])
    assert r.exit_code == 0, r.output
    assert local_policy.load(site, "bc") == local_policy.Rules(max_epochs=1, min_rows=50)
    assert local_policy.path(site, "bc").parent == site / ".node" / "local-policies"
    rules.write_text(json.dumps({"min_rows": 500}))  # more rows than the site holds
    r = run(app, ["nodes", "policy", str(site), "bc", "--file", str(rules)])
    assert r.exit_code != 0 and "min_rows" in r.output, r.output
    assert run(app, ["nodes", "policy", str(site), "bc", "--clear"]).exit_code == 0
    assert local_policy.load(site, "bc") is None


@pytest.mark.slow
@pytest.mark.one_backend  # Flower processes at a site
def test_a_hub_that_dropped_the_policy_still_cannot_make_the_site_train(http: Any, live_url: str, world: Any,
                                                                       services: Any, settings: Any,
                                                                       tmp_path: Path) -> None:
    """The owner keeps its rule at its site too; the hub's copy is deleted in the hub's database (a
    compromised hub), so the hub admits the job, and the site still refuses it, reported and
    audited, and the failed job's error names the site and the rule."""
    from consortium.federation.node import local_policy
    from consortium.store.tables.audit import AuditEvent
    from consortium.store.tables.data import Dataset
    from consortium.store.tables.policies import DatasetPolicy

    a, b = two_orgs_sharing_bc(http, world)
    site = tmp_path / "site-b"
    save_dataset(site, "bc", partition(load_sample("breast_cancer"), 2, seed=0)[1])
    local_policy.save(site, "bc", {"max_epochs": 1})
    r = http.put(f"/api/v1/datasets/{b.org}/bc/policy", json={"max_epochs": 1}, headers=b.headers)
    assert r.status_code == 200, r.text
    with transaction(services.session_factory) as s:  # the hub is compromised: its copy of the rules is gone
        ds = s.query(Dataset).filter_by(org_id=b.org_id, name="bc").one()
        s.delete(s.get(DatasetPolicy, ds.id))
    r = http.post("/api/v1/jobs", json={"recipe": _recipe(a, b, local_epochs=3, round_timeout_s=30)},
                  headers=a.headers)
    assert r.status_code == 201, r.text  # the hub no longer checks anything
    job_id = r.json()["id"]
    _refused_at_the_site(http, live_url, settings, a, b, site, job_id)
    with transaction(services.session_factory) as s:
        ev = s.query(AuditEvent).filter_by(action="record_refusal", outcome="ok", actor_org_id=b.org_id).one()
        assert json.loads(ev.details)["job_id"] == job_id and json.loads(ev.details)["rules"] == ["max_epochs"]
        assert "the site's own policy" in json.loads(ev.details)["message"]
    error = http.get(f"/api/v1/jobs/{job_id}", headers=a.headers).json()["error"]
    assert error.startswith(f"site {b.org} refused: max_epochs: 3 epochs, more than the 1 allowed"), error
    node = http.get("/api/v1/nodes/site-b", headers=b.headers).json()  # the owner sees the site's own rules
    assert [d.get("site_policy") for d in node["datasets"]] == [{"max_epochs": 1}], node["datasets"]
    with transaction(services.session_factory) as s:  # and the node's registration audited them
        reg = s.query(AuditEvent).filter_by(action="register_node", actor_org_id=b.org_id).one()
        assert json.loads(reg.details)["site_policies"] == {"bc": {"max_epochs": 1}}
