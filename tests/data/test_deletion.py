"""Deleting datasets and versions: owner admins only, audited, grants revoked, blobs removed after
the rows commit (never before), refused while queued or running jobs use the data."""

from __future__ import annotations

from typing import Any

import pytest
from data_files import API, csv_bytes, stored_blobs, upload

from consortium.data import catalog, deletion
from consortium.governance import credentials
from consortium.jobs import queue
from consortium.store.db import transaction
from consortium.store.tables.data import DatasetVersion


@pytest.fixture(scope="module")
def orgs(world: Any) -> dict[str, Any]:
    org = world.org()
    return {"admin": world.actor(org, "admin"), "member": world.actor(org, "member"),
            "grantee": world.actor(world.org(), "owner"), "stranger": world.actor(world.org(), "owner")}


def blob_of(services: Any, org: str, name: str, version: int) -> str:
    with transaction(services.session_factory) as s:
        return catalog.version(s, catalog.find(s, org, name), version).blob_key


def audit(http: Any, actor: Any, action: str) -> list[dict[str, Any]]:
    events = http.get("/api/v1/audit", params={"limit": 500}, headers=actor.headers).json()["items"]
    return [e for e in events if e["action"] == action]


def test_delete_one_version_keeps_the_others_and_never_reuses_its_number(
        http: Any, services: Any, orgs: dict[str, Any]) -> None:
    admin = orgs["admin"]
    for n in (10, 11, 12):
        assert upload(http, admin, "vers", csv_bytes(n), target="label").status_code == 201
    key2, key3 = blob_of(services, admin.org, "vers", 2), blob_of(services, admin.org, "vers", 3)
    base = f"{API}/{admin.org}/vers"
    assert http.delete(base + "/versions/latest", headers=admin.headers).status_code == 422
    r = http.delete(base + "/versions/3", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["versions"] == [3] and r.json()["deleted"] == "version"
    assert key3 not in stored_blobs(services) and key2 in stored_blobs(services)
    assert http.get(base + "/versions/3", headers=admin.headers).status_code == 404
    assert [v["version"] for v in http.get(base + "/versions", headers=admin.headers).json()["items"]] == [1, 2]
    assert http.get(base + "/versions/2/download", headers=admin.headers).content == csv_bytes(11)
    again = upload(http, admin, "vers", csv_bytes(13), target="label").json()
    assert again["version"] == 4  # 3 named the deleted file: it is not given again
    assert any(e["outcome"] == "ok" and e["details"]["versions"] == [3]
               for e in audit(http, admin, "delete_version"))


def test_delete_dataset_revokes_grants_and_removes_blobs(http: Any, services: Any,
                                                         orgs: dict[str, Any]) -> None:
    admin, grantee = orgs["admin"], orgs["grantee"]
    for n in (20, 21):
        upload(http, admin, "gone", csv_bytes(n), target="label")
    keys = {blob_of(services, admin.org, "gone", v) for v in (1, 2)}
    g = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{admin.org}/gone",
                                          "permission": "download", "grantee_org": grantee.org},
                  headers=admin.headers).json()
    base = f"{API}/{admin.org}/gone"
    assert http.get(base, headers=grantee.headers).status_code == 200
    r = http.delete(base, headers=admin.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["versions"] == [1, 2] and out["revoked_grants"] == [g["id"]] and out["deleted"] == "dataset"
    assert not keys & stored_blobs(services)
    assert http.get(base, headers=admin.headers).status_code == 404
    assert http.get(base, headers=grantee.headers).status_code == 404
    assert http.get(f"/api/v1/grants/{g['id']}", headers=admin.headers).json()["revoked_at"] is not None
    assert any(e["outcome"] == "ok" and e["details"]["revoked_grants"] == [g["id"]]
               for e in audit(http, admin, "delete_dataset"))
    assert upload(http, admin, "gone", csv_bytes(5), target="label").json()["version"] == 1  # a new dataset


def test_only_owner_admins_delete(http: Any, services: Any, orgs: dict[str, Any]) -> None:
    admin = orgs["admin"]
    upload(http, admin, "kept", csv_bytes(8), target="label")
    http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{admin.org}/kept",
                                      "permission": "metadata", "grantee_org": orgs["grantee"].org},
              headers=admin.headers)
    base = f"{API}/{admin.org}/kept"
    for who, status in (("member", 403), ("grantee", 403), ("stranger", 404)):
        for path in (base, base + "/versions/1"):
            assert http.delete(path, headers=orgs[who].headers).status_code == status, (who, path)
    assert http.get(base + "/versions/1/download", headers=admin.headers).status_code == 200
    refused = audit(http, admin, "delete_dataset")
    assert any(e["outcome"] == "permission_denied" and e["actor_org_id"] == orgs["grantee"].org_id
               for e in refused)


def test_refused_while_a_job_uses_it(http: Any, services: Any, orgs: dict[str, Any]) -> None:
    admin = orgs["admin"]
    upload(http, admin, "busy", csv_bytes(30), target="label")
    upload(http, admin, "busy", csv_bytes(31), target="label")
    recipe = {"name": "uses-busy", "data": {"dataset": f"{admin.org}/busy", "version": 1, "target": "label"},
              "model": {"type": "logistic"}, "train": {"epochs": 1}}
    job = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=admin.headers)
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    base = f"{API}/{admin.org}/busy"
    r = http.delete(base, headers=admin.headers)
    assert r.status_code == 409 and job_id in r.text and "uses-busy" in r.text, r.text
    assert http.delete(base + "/versions/1", headers=admin.headers).status_code == 409
    assert http.delete(base + "/versions/2", headers=admin.headers).status_code == 200  # not used
    with transaction(services.session_factory) as s:
        queue.finish(s, job_id, "succeeded", result={})
    assert http.delete(base, headers=admin.headers).status_code == 200


def test_blobs_go_only_when_the_deletion_commits(http: Any, services: Any, orgs: dict[str, Any]) -> None:
    admin = orgs["admin"]
    upload(http, admin, "tx", csv_bytes(9), target="label")
    key = blob_of(services, admin.org, "tx", 1)
    s = services.session_factory()
    try:
        p = credentials.resolve_token(s, admin.token)
        deletion.delete(s, services.blobs, p, catalog.find(s, admin.org, "tx"))
        assert key in stored_blobs(services)  # rows deleted, not yet committed: the blob stays
        s.rollback()
    finally:
        s.close()
    assert key in stored_blobs(services)
    assert http.get(f"{API}/{admin.org}/tx/versions/1/download", headers=admin.headers).status_code == 200
    with transaction(services.session_factory) as s:
        deletion.delete(s, services.blobs, credentials.resolve_token(s, admin.token),
                        catalog.find(s, admin.org, "tx"))
        assert key in stored_blobs(services)
        assert s.query(DatasetVersion).filter_by(blob_key=key).count() == 0
    assert key not in stored_blobs(services)
