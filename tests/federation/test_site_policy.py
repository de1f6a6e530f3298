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
    agent = NodeAgent(Client(live_url, b.token), "site-b", site, interval=0.5)
    t = threading.Thread(target=agent.run, daemon=True)
    t.start()
    worker = start_worker(settings)
    try:
        final = finished_job(http, a, job_id)
        assert final["state"] == "failed", final
        wait_for(lambda: job_id in agent.refused, 30, 0.2, "the node's refusal report")
        with transaction(services.session_factory) as s:
            ev = s.query(AuditEvent).filter_by(action="record_refusal", outcome="ok").order_by(
                AuditEvent.seq.desc()).first()
            assert ev is not None and ev.actor_org_id == b.org_id
            assert json.loads(ev.details)["job_id"] == job_id and json.loads(ev.details)["rules"] == ["max_epochs"]
        assert not (site / ".logs").exists() or "max_epochs" in "".join(
            f.read_text(errors="replace") for f in (site / ".logs").iterdir())
    finally:
        agent.close()
        t.join(5)
        stop_worker(worker)
