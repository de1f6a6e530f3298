"""Permissions that follow derived models (issue 19 point 2): a model trained on another
organization's data is served to an organization outside what that contributor granted only with
its consent, which it approves or refuses (both audited); its ONNX file is a separate right of
the data owner; a consent request to an organization that does not exist fails clearly."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest

from consortium.store.db import transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import tiny_classifier


@pytest.fixture(scope="module")
def setup(http: Any, world: Any, services: Any) -> dict[str, Any]:
    names = {k: world.org() for k in ("contrib", "owner", "granted", "outsider", "outsider2")}
    a = {k: world.actor(v, "admin") for k, v in names.items()}
    a["contrib_viewer"] = world.actor(names["contrib"], "viewer")
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "iris", "name": "iris"},
                  headers=a["contrib"].headers)
    assert r.status_code == 201, r.text
    for who in ("owner", "granted"):
        r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{names['contrib']}/iris",
                                              "permission": "compute", "grantee_org": names[who]},
                      headers=a["contrib"].headers)
        assert r.status_code == 201, r.text
    from consortium.registry import models as reg
    from consortium.store.tables.data import Dataset

    with transaction(services.session_factory) as s:
        ds = s.query(Dataset).filter_by(org_id=a["contrib"].org_id, name="iris").one()
        lineage = {"datasets": [{"dataset": f"{names['contrib']}/iris", "dataset_id": ds.id, "version": 1,
                                 "owner": names["contrib"], "owner_org_id": ds.org_id}],
                   "organizations": [names["contrib"]], "source": "training"}
        reg.register_version(s, a["owner"].org_id, "derived", onnx=tiny_classifier(), blobs=services.blobs,
                             task="classification", lineage=lineage)
        gone = dict(lineage, datasets=[{**lineage["datasets"][0], "owner_org_id": "org_gone0000000000"}])
        reg.register_version(s, a["owner"].org_id, "orphan", onnx=tiny_classifier(), blobs=services.blobs,
                             task="classification", lineage=gone)
        reg.register_version(s, a["owner"].org_id, "own", onnx=tiny_classifier(), blobs=services.blobs,
                             task="classification")
    r = http.post("/api/v1/deployments", json={"name": f"d-{secrets.token_hex(3)}", "model": "derived"},
                  headers=a["owner"].headers)
    assert r.status_code == 201, r.text
    return {"names": names, "a": a, "deployment": r.json()["name"],
            "model": f"/api/v1/models/{names['owner']}/derived"}


def _share(http: Any, s: dict[str, Any], to: str) -> Any:
    return http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": s["deployment"],
                                             "permission": "invoke", "grantee_org": s["names"][to]},
                     headers=s["a"]["owner"].headers)


def _ask(http: Any, s: dict[str, Any], to: str, action: str = "deploy", model: str = "derived") -> Any:
    return http.post(f"/api/v1/models/{s['names']['owner']}/{model}/consents",
                     json={"organization": to, "action": action}, headers=s["a"]["owner"].headers)


def test_serving_within_the_grants_needs_no_consent(http: Any, setup: dict[str, Any]) -> None:
    r = _share(http, setup, "granted")  # it already holds a grant of the contributor's on the data
    assert r.status_code == 201, r.text


def test_serving_to_an_outsider_waits_for_consent(http: Any, services: Any, setup: dict[str, Any]) -> None:
    s = setup
    r = _share(http, s, "outsider")
    assert r.status_code == 403, r.text
    assert s["names"]["contrib"] in r.json()["error"]["message"] and "consent" in r.json()["error"]["message"]
    r = _ask(http, s, s["names"]["outsider"])
    assert r.status_code == 201, r.text
    [req] = r.json()
    assert req["contributor"] == s["names"]["contrib"] and req["state"] == "pending"
    assert _ask(http, s, s["names"]["outsider"]).json()[0]["id"] == req["id"]  # an open request is reused
    assert _share(http, s, "outsider").status_code == 403  # still pending
    # the contributor sees it, a viewer may not decide, an uninvolved organization does not see it
    listed = http.get("/api/v1/consents", params={"direction": "received"}, headers=s["a"]["contrib"].headers)
    assert [c["id"] for c in listed.json()["items"]] == [req["id"]]
    approve = f"/api/v1/consents/{req['id']}/approve"
    assert http.post(approve, headers=s["a"]["contrib_viewer"].headers).status_code == 403
    assert http.get(f"/api/v1/consents/{req['id']}", headers=s["a"]["outsider"].headers).status_code == 404
    assert http.post(f"/api/v1/consents/{req['id']}/approve", headers=s["a"]["owner"].headers).status_code == 403
    r = http.post(f"/api/v1/consents/{req['id']}/approve", headers=s["a"]["contrib"].headers)
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text
    assert http.post(f"/api/v1/consents/{req['id']}/refuse", headers=s["a"]["contrib"].headers).status_code == 409
    assert _share(http, s, "outsider").status_code == 201
    from consortium.store.tables.audit import AuditEvent

    with transaction(services.session_factory) as db:
        asked = db.query(AuditEvent).filter_by(action="ask_consent", outcome="ok").all()
        decided = db.query(AuditEvent).filter_by(action="approve_consent", outcome="ok").all()
        assert asked and decided and json.loads(decided[-1].details)["state"] == "approved"


def test_a_refused_consent_keeps_the_model_away(http: Any, setup: dict[str, Any]) -> None:
    s = setup
    [req] = _ask(http, s, s["names"]["outsider2"]).json()
    r = http.post(f"/api/v1/consents/{req['id']}/refuse", headers=s["a"]["contrib"].headers)
    assert r.status_code == 200 and r.json()["state"] == "refused"
    assert _share(http, s, "outsider2").status_code == 403


def test_downloading_the_onnx_file_is_the_data_owners_right(http: Any, setup: dict[str, Any]) -> None:
    s = setup
    onnx = f"{s['model']}/versions/1/onnx"
    r = http.get(onnx, headers=s["a"]["owner"].headers)
    assert r.status_code == 403 and "download" in r.text, r.text
    own = f"/api/v1/models/{s['names']['owner']}/own/versions/1/onnx"
    assert http.get(own, headers=s["a"]["owner"].headers).status_code == 200  # its own data: its own right
    policy = f"/api/v1/datasets/{s['names']['contrib']}/iris/policy"
    assert http.put(policy, json={"model_download": True}, headers=s["a"]["contrib"].headers).status_code == 200
    assert http.get(onnx, headers=s["a"]["owner"].headers).status_code == 200
    assert http.delete(policy, headers=s["a"]["contrib"].headers).status_code == 200
    assert http.get(onnx, headers=s["a"]["owner"].headers).status_code == 403
    [req] = _ask(http, s, s["names"]["owner"], "download").json()  # or a consent to download
    assert http.post(f"/api/v1/consents/{req['id']}/approve", headers=s["a"]["contrib"].headers).status_code == 200
    assert http.get(onnx, headers=s["a"]["owner"].headers).status_code == 200


def test_consent_to_an_organization_that_does_not_exist_fails_clearly(http: Any, setup: dict[str, Any]) -> None:
    r = _ask(http, setup, "no-such-org-anymore")
    assert r.status_code == 404, r.text
    assert "no-such-org-anymore" in r.json()["error"]["message"] and "no longer" in r.json()["error"]["message"]
    r = _ask(http, setup, setup["names"]["outsider"], model="orphan")  # its contributor is gone
    assert r.status_code == 409 and "no longer exists" in r.json()["error"]["message"], r.text
    r = _ask(http, setup, setup["names"]["outsider"], model="own")
    assert r.status_code == 422 and "needs no consent" in r.text


def test_deploying_a_project_model_serves_every_member_so_each_needs_consent(http: Any, services: Any,
                                                                             setup: dict[str, Any]) -> None:
    from consortium.governance import projects
    from consortium.governance.credentials import resolve_token
    from consortium.registry import models as reg

    s = setup
    a = s["a"]
    with transaction(services.session_factory) as db:
        lead, guest = resolve_token(db, a["owner"].token), resolve_token(db, a["outsider"].token)
        prj = projects.create(db, lead, f"p-{secrets.token_hex(3)}", "a study", ["compute"])
        projects.accept(db, guest, projects.invite(db, lead, prj, projects.membership(db, prj.id, lead.org_id),
                                                   s["names"]["outsider"]))
        reg.register_version(db, a["owner"].org_id, "in-project", onnx=tiny_classifier(), blobs=services.blobs,
                             task="classification",
                             lineage=reg.versions(db, reg.find_model(db, s["names"]["owner"], "derived"))[0].lineage)
        reg.find_model(db, s["names"]["owner"], "in-project").project_id = prj.id
    body = {"name": f"p-{secrets.token_hex(3)}", "model": "in-project"}
    r = http.post("/api/v1/deployments", json=body, headers=a["owner"].headers)
    assert r.status_code == 403 and s["names"]["contrib"] in r.text, r.text
    [req] = _ask(http, s, s["names"]["outsider"], model="in-project").json()
    assert http.post(f"/api/v1/consents/{req['id']}/approve", headers=a["contrib"].headers).status_code == 200
    assert http.post("/api/v1/deployments", json=body, headers=a["owner"].headers).status_code == 201


def test_sharing_a_derived_model_in_a_project_needs_each_contributors_consent(http: Any, services: Any, world: Any,
                                                                           setup: dict[str, Any]) -> None:
    """Placing the model in a project (here: uploading a version with ``project``) lets every
    active member read it: one outside the contributor's grants needs its consent (``share``),
    unless the contributor is a member too and the terms include ``metadata``; refusals audited."""
    from consortium.governance import projects
    from consortium.governance.credentials import resolve_token
    from consortium.registry import models as reg
    from consortium.store.tables.audit import AuditEvent

    s, a = setup, setup["a"]
    with transaction(services.session_factory) as db:
        lead = resolve_token(db, a["owner"].token)
        lineage = reg.versions(db, reg.find_model(db, s["names"]["owner"], "derived"))[0].lineage
        made = {}
        for terms, guests in ((["compute"], ["outsider"]), (["metadata"], ["contrib", "outsider2"])):
            prj = projects.create(db, lead, f"share-{secrets.token_hex(3)}", "a study", terms)
            for g in guests:
                projects.accept(db, resolve_token(db, a[g].token), projects.invite(
                    db, lead, prj, projects.membership(db, prj.id, lead.org_id), s["names"][g]))
            model = f"to-share-{terms[0]}"
            reg.register_version(db, a["owner"].org_id, model, onnx=tiny_classifier(), blobs=services.blobs,
                                 task="classification", lineage=lineage)
            made[terms[0]] = (prj.name, model, reg.find_model(db, s["names"]["owner"], model).id)

    def upload(project: str, model: str) -> Any:
        return http.post("/api/v1/models/upload", params={"name": model, "filename": "m.onnx", "project": project},
                         content=tiny_classifier(), headers=a["owner"].headers)

    project, model, model_id = made["compute"]
    r = upload(project, model)
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert s["names"]["contrib"] in err["message"] and "sharing it with" in err["message"], err
    assert f"consents ask {s['names']['owner']}/{model} {s['names']['outsider']} --action share" in err["hint"], err
    card = f"/api/v1/models/{s['names']['owner']}/{model}"
    assert http.get(card, headers=a["outsider"].headers).status_code == 404  # not shared: nothing changed
    [req] = _ask(http, s, s["names"]["outsider"], "share", model=model).json()
    assert http.post(f"/api/v1/consents/{req['id']}/approve", headers=a["contrib"].headers).status_code == 200
    r = upload(project, model)
    assert r.status_code == 201, r.text
    assert http.get(card, headers=a["outsider"].headers).status_code == 200  # the member reads it now
    project, model, _ = made["metadata"]  # the contributor is a member and the terms share metadata
    assert upload(project, model).status_code == 201
    with transaction(services.session_factory) as db:  # an organization that joins later reads it only
        lead = resolve_token(db, a["owner"].token)  # with the contributor's consent too
        prj, m = projects.visible(db, lead, made["compute"][0])
        projects.accept(db, resolve_token(db, a["granted"].token), projects.invite(db, lead, prj, m,
                                                                                   s["names"]["granted"]))
        projects.accept(db, resolve_token(db, a["outsider2"].token), projects.invite(db, lead, prj, m,
                                                                                     s["names"]["outsider2"]))
    assert http.get(card, headers=a["granted"].headers).status_code == 200  # within the contributor's grants
    r = http.get(card, headers=a["outsider2"].headers)
    assert r.status_code == 403 and s["names"]["contrib"] in r.text and "consent" in r.text, r.text
    with transaction(services.session_factory) as db:
        events = [(e.action, e.outcome) for e in db.query(AuditEvent).filter_by(resource_id=model_id)
                  .order_by(AuditEvent.seq)]
        assert [e for e in events if e[0] == "upload"] == [("upload", "permission_denied"), ("upload", "ok")], events
