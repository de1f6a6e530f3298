"""Dataset policies through the API (issue 19 point 1): the owner sets the rules, each rule refuses
a job that breaks it at submission with a 403 naming it, impossible rules get a 422 naming them,
and every change and refusal is in the audit, against the dataset, for its owner to see."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consortium.store.db import transaction


@pytest.fixture(scope="module")
def setup(http: Any, world: Any) -> dict[str, Any]:
    owner_org, user_org = world.org(), world.org()
    owner, viewer = world.actor(owner_org, "admin"), world.actor(owner_org, "viewer")
    user, outsider = world.actor(user_org, "admin"), world.actor(world.org(), "owner")
    for a in (owner, user):
        r = http.post("/api/v1/datasets/import-sample", json={"sample": "iris", "name": "iris"}, headers=a.headers)
        assert r.status_code == 201, r.text
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{owner_org}/iris",
                                          "permission": "compute", "grantee_org": user_org}, headers=owner.headers)
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/projects", json={"name": "study", "purpose": "Iris species research",
                                            "terms": ["compute"]}, headers=user.headers)
    assert r.status_code == 201, r.text
    from consortium.governance import projects
    from consortium.governance.credentials import resolve_token

    with transaction(world.svc.session_factory) as db:  # the owner joins the study
        lead, member = resolve_token(db, user.token), resolve_token(db, owner.token)
        prj, m = projects.visible(db, lead, "study")
        projects.accept(db, member, projects.invite(db, lead, prj, m, owner_org))
    return {"owner": owner, "viewer": viewer, "user": user, "outsider": outsider, "owner_org": owner_org,
            "user_org": user_org, "url": f"/api/v1/datasets/{owner_org}/iris/policy"}


def _recipe(s: dict[str, Any], federated: bool = False, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"name": "p", "data": {"dataset": f"{s['owner_org']}/iris", "target": "target"},
                         "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 2}}
    if federated:
        r["federated"] = {"datasets": [f"{s['owner_org']}/iris", f"{s['user_org']}/iris"], "rounds": 2,
                          "local_epochs": 1, **over.pop("fed", {})}
    r.update(over)
    return r


def _put(http: Any, s: dict[str, Any], rules: dict[str, Any], who: str = "owner") -> Any:
    return http.put(s["url"], json=rules, headers=s[who].headers)


def _submit(http: Any, s: dict[str, Any], recipe: dict[str, Any], **body: Any) -> Any:
    return http.post("/api/v1/jobs", json={"recipe": recipe, **body}, headers=s["user"].headers)


def _refused(r: Any, rule: str) -> None:
    assert r.status_code == 403, r.text
    assert f"{rule}:" in r.json()["error"]["message"], r.text


def test_owner_sets_reads_and_others_cannot(http: Any, setup: dict[str, Any]) -> None:
    s = setup
    r = http.get(s["url"], headers=s["viewer"].headers)
    assert r.status_code == 200 and r.json()["set"] == []
    assert _put(http, s, {"max_epochs": 5}, "viewer").status_code == 403  # a viewer of the owner
    assert _put(http, s, {"max_epochs": 5}, "user").status_code == 403  # a grantee sees it, may not change it
    assert _put(http, s, {"max_epochs": 5}, "outsider").status_code == 404  # anyone else: as if absent
    r = _put(http, s, {"max_epochs": 5, "manual_approval": True})
    assert r.status_code == 200, r.text
    assert r.json()["set"] == ["manual_approval", "max_epochs"] and r.json()["rules"]["max_epochs"] == 5
    assert http.get(s["url"], headers=s["user"].headers).json()["rules"]["max_epochs"] == 5  # the grantee reads it
    assert _put(http, s, {"max_epoch": 5}).status_code == 422  # an unknown rule


@pytest.mark.parametrize(("rules", "named"), [
    ({"max_epochs": 0}, ["max_epochs"]),
    ({"dp_max_epsilon": 0}, ["dp_max_epsilon"]),
    ({"min_rows": 151}, ["min_rows"]),  # iris has 150 rows
    ({"max_rounds": -1, "model_types": ["cnn"]}, ["max_rounds", "model_types"]),  # a cnn on a table
    ({"organizations": []}, ["organizations"]),
    ({"organizations": ["no-such-org"]}, ["organizations"]),
    ({"projects": ["nobody/nothing"]}, ["projects"]),
])
def test_impossible_rules_get_422_naming_them(http: Any, setup: dict[str, Any], rules: dict[str, Any],
                                              named: list[str]) -> None:
    r = _put(http, setup, rules)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert sorted(d["rule"] for d in err["details"]) == named, err
    for rule in named:
        assert rule in err["message"]


@pytest.mark.parametrize(("rules", "rule", "recipe", "body"), [
    ({"organizations": ["$outsider"]}, "organizations", {}, {}),
    ({"purposes": ["cancer research"]}, "purposes", {}, {"project": "study"}),
    ({"max_epochs": 1}, "max_epochs", {}, {}),
    ({"max_rounds": 1}, "max_rounds", {"federated": True}, {}),
    ({"model_types": ["logistic"]}, "model_types", {}, {}),
    ({"max_parameters": 50}, "max_parameters", {}, {}),  # 4*8+8 + 8*3+3 = 67
    ({"min_rows": 149}, "min_rows", {}, {}),  # 150 rows, 20% held out: 120 per update
    ({"dp_max_epsilon": 1.0}, "dp_max_epsilon", {"federated": True}, {}),  # no DP at all
    ({"dp_max_epsilon": 1.0}, "dp_max_epsilon", {"federated": True, "fed": {"dp": {"epsilon": 4.0}}}, {}),
    ({"dp_max_epsilon": 1.0}, "dp_max_epsilon", {}, {}),  # hub training has no DP
])
def test_each_rule_refuses_a_job_that_breaks_it(http: Any, services: Any, setup: dict[str, Any],
                                                rules: dict[str, Any], rule: str, recipe: dict[str, Any],
                                                body: dict[str, Any]) -> None:
    s = setup
    if rules.get("organizations"):
        rules = {"organizations": [s["outsider"].org]}
    assert _put(http, s, rules).status_code == 200
    if body.get("project"):
        body = {"project": f"{s['user_org']}/study"}
    r = _submit(http, s, _recipe(s, **recipe), **body)
    _refused(r, rule)
    assert f"{s['owner_org']}/iris" in r.json()["error"]["message"]
    # the refusal is audited against the dataset, naming the rule, for its owner to see
    from consortium.store.tables.audit import AuditEvent
    from consortium.store.tables.data import Dataset

    with transaction(services.session_factory) as db:
        ds = db.query(Dataset).filter_by(org_id=s["owner"].org_id, name="iris").one()
        ev = db.query(AuditEvent).filter_by(action="submit_job", resource_id=ds.id).order_by(
            AuditEvent.seq.desc()).first()
        assert ev is not None and ev.outcome != "ok" and ev.resource_org_id == s["owner"].org_id
        assert rule in json.loads(ev.details)["rules"]


def test_a_job_within_the_rules_is_queued(http: Any, services: Any, setup: dict[str, Any]) -> None:
    s = setup
    r = _put(http, s, {"max_epochs": 3, "max_rounds": 2, "model_types": ["mlp"], "max_parameters": 100,
                       "min_rows": 100, "dp_max_epsilon": 2.0, "organizations": [s["user_org"]],
                       "projects": [f"{s['user_org']}/study"], "purposes": ["iris species   research"]})
    assert r.status_code == 200, r.text
    assert r.json()["rules"]["projects"] == [f"{s['user_org']}/study"]
    fed = _recipe(s, federated=True, fed={"dp": {"epsilon": 1.5}})
    r = _submit(http, s, fed, project=f"{s['user_org']}/study")
    assert r.status_code == 201, r.text
    _refused(_submit(http, s, fed), "projects")  # the same job outside the project
    # the change is audited with the rules before and after
    from consortium.store.tables.audit import AuditEvent

    with transaction(services.session_factory) as db:
        ev = db.query(AuditEvent).filter_by(action="set_policy", outcome="ok").order_by(AuditEvent.seq.desc()).first()
        assert ev is not None and json.loads(ev.details)["after"]["max_epochs"] == 3
    r = http.delete(s["url"], headers=s["owner"].headers)
    assert r.status_code == 200 and r.json()["set"] == []
    assert _submit(http, s, _recipe(s, train={"epochs": 9})).status_code == 201


def test_manual_approval_opens_a_pending_approval(services: Any, http: Any, setup: dict[str, Any]) -> None:
    """An organization without a manual node still waits for its admin when its policy says so."""
    from consortium.governance.policies import manual_orgs
    from consortium.jobs import federated_nodes
    from consortium.store.tables.data import Dataset

    s = setup
    assert _put(http, s, {"manual_approval": True}).status_code == 200
    r = _submit(http, s, _recipe(s, federated=True))
    assert r.status_code == 201, r.text
    with transaction(services.session_factory) as db:
        ds = db.query(Dataset).filter_by(org_id=s["owner"].org_id, name="iris").one()
        manual = manual_orgs(db, [ds.id])
        assert manual == {s["owner"].org_id}
        states = federated_nodes.open_approvals(db, r.json()["id"], [s["owner"].org_id, s["user"].org_id], manual)
    assert states == {s["owner"].org_id: "pending", s["user"].org_id: "approved"}
    http.delete(s["url"], headers=s["owner"].headers)


def test_node_refusal_is_recorded(http: Any, services: Any, setup: dict[str, Any]) -> None:
    s = setup
    r = http.post(f"{s['url']}/refusals", json={"job_id": "job_nope", "rules": ["max_epochs"]},
                  headers=s["owner"].headers)
    assert r.status_code == 404  # a job never assigned to the organization
    job = _submit(http, s, _recipe(s, federated=True)).json()["id"]
    from consortium.jobs import federated_nodes

    with transaction(services.session_factory) as db:
        federated_nodes.open_approvals(db, job, [s["owner"].org_id])
    r = http.post(f"{s['url']}/refusals", json={"job_id": job, "rules": ["max_epochs"], "message": "10 > 5"},
                  headers=s["owner"].headers)
    assert r.status_code == 201, r.text
    from consortium.store.tables.audit import AuditEvent

    with transaction(services.session_factory) as db:
        ev = db.query(AuditEvent).filter_by(action="record_refusal").order_by(AuditEvent.seq.desc()).first()
        assert ev is not None and json.loads(ev.details)["rules"] == ["max_epochs"]
    logs = http.get(f"/api/v1/jobs/{job}/events", headers=s["user"].headers).json()
    assert any("refused the run at its site" in str(e) and "10 > 5" in str(e) for e in logs["items"]), logs
    from consortium.jobs import queue

    with transaction(services.session_factory) as db:  # the run failed before the site's report came in
        queue.finish(db, job, "failed", error="round 1: 1 of 2 nodes replied; federated.min_nodes is 2")
    r = http.post(f"{s['url']}/refusals", json={"job_id": job, "rules": ["max_rounds"], "message": "max_rounds: 9"},
                  headers=s["owner"].headers)
    assert r.status_code == 201, r.text
    error = http.get(f"/api/v1/jobs/{job}", headers=s["user"].headers).json()["error"]
    assert error.startswith(f"site {s['owner_org']} refused: max_rounds: 9; ") and "nodes replied" in error, error
    with transaction(services.session_factory) as db:
        from consortium.jobs import site_refusals

        assert site_refusals.summary(db, job) == (f"site {s['owner_org']} refused: 10 > 5; "
                                                  f"site {s['owner_org']} refused: max_rounds: 9")


def test_cli_sets_shows_and_clears_a_policy(live_url: str, setup: dict[str, Any]) -> None:
    """``consortium datasets policy`` through the SDK: options change single rules and keep the others."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "CONSORTIUM_URL": live_url, "CONSORTIUM_TOKEN": setup["owner"].token, "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "consortium"), *args], env=env,
                              capture_output=True, text=True, timeout=120)

    r = cli("datasets", "policy", "set", "iris", "--max-epochs", "4", "--model-types", "mlp,logistic")
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli("datasets", "policy", "set", "iris", "--min-rows", "10", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rules = json.loads(r.stdout)["rules"]
    assert rules["max_epochs"] == 4 and rules["min_rows"] == 10 and rules["model_types"] == ["mlp", "logistic"]
    r = cli("datasets", "policy", "set", "iris", "--max-epochs", "0")
    assert r.returncode != 0 and "max_epochs" in r.stdout + r.stderr
    assert "max_epochs" in cli("datasets", "policy", "show", "iris").stdout
    assert cli("datasets", "policy", "clear", "iris").returncode == 0
