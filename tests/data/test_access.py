"""Grants on datasets through the HTTP API: metadata, compute and download; revocation at once;
every read audited; and encryption at rest with the owner's key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from data_files import API, csv_bytes, upload

from consortium.data.access import load_for_compute
from consortium.errors import NotFound, PermissionDenied
from consortium.governance import credentials
from consortium.store.db import transaction

MARKER = "ZQX-SECRET-MARKER-7731"


@pytest.fixture(scope="module")
def orgs(http: Any, world: Any) -> dict[str, Any]:
    owner = world.actor(world.org(), "admin")
    assert upload(http, owner, "cohort", csv_bytes(40, MARKER), target="label").status_code == 201
    return {"owner": owner, "other": world.actor(world.org(), "admin")}


def _grant(http: Any, owner: Any, grantee: Any, permission: str) -> str:
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{owner.org}/cohort",
                                          "permission": permission, "grantee_org": grantee.org},
                  headers=owner.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _compute(services: Any, actor: Any, ref: str) -> Any:
    with transaction(services.session_factory) as s:
        p = credentials.resolve_token(s, actor.token)
        return load_for_compute(s, p, ref, 1, services.blobs)


def test_grants_metadata_compute_download_and_revoke(http: Any, services: Any, orgs: dict[str, Any]) -> None:
    owner, other = orgs["owner"], orgs["other"]
    base = f"{API}/{owner.org}/cohort"
    ref = f"{owner.org}/cohort"
    for path in ("", "/versions/1", "/versions/1/preview", "/versions/1/download"):
        assert http.get(base + path, headers=other.headers).status_code == 404
    with pytest.raises(NotFound):
        _compute(services, other, ref)
    assert all(d["name"] != "cohort" for d in http.get(API, headers=other.headers).json()["items"])

    g = _grant(http, owner, other, "metadata")
    pre = http.get(base + "/versions/1/preview", headers=other.headers).json()
    assert pre["rows_preview"] is None and pre["schema"]["classes"] == {"0": 20, "1": 20}
    assert http.get(base + "/versions/1/download", headers=other.headers).status_code == 403
    with pytest.raises(PermissionDenied):
        _compute(services, other, ref)
    shared = http.get(API + "?scope=shared", headers=other.headers).json()["items"]
    assert [d["access"] for d in shared] == ["metadata"]

    c = _grant(http, owner, other, "compute")
    data = _compute(services, other, ref)
    assert data.kind == "tabular" and data.n_rows == 40 and data.target == "label"
    assert data.frame is not None and list(data.frame.columns) == ["age", "city", "note", "label"]
    assert http.get(base + "/versions/1/download", headers=other.headers).status_code == 403
    assert http.get(base + "/versions/1/preview", headers=other.headers).json()["rows_preview"] is None

    d = _grant(http, owner, other, "download")
    rows = http.get(base + "/versions/1/preview?rows=3", headers=other.headers).json()["rows_preview"]
    assert rows[0]["note"] == f"{MARKER}-0" and len(rows) == 3
    assert http.get(base + "/versions/1/download", headers=other.headers).content == csv_bytes(40, MARKER)

    for gid in (d, c):
        assert http.delete(f"/api/v1/grants/{gid}", headers=owner.headers).status_code == 200
    assert http.get(base + "/versions/1/download", headers=other.headers).status_code == 403  # at once
    with pytest.raises(PermissionDenied):
        _compute(services, other, ref)
    http.delete(f"/api/v1/grants/{g}", headers=owner.headers)
    assert http.get(base, headers=other.headers).status_code == 404

    # Every read is in the owner's audit trail, refused ones included.
    events = http.get("/api/v1/audit", params={"limit": 500}, headers=owner.headers).json()["items"]
    seen = {(e["action"], e["outcome"]) for e in events
            if e["actor_org_id"] == other.org_id and e["resource_type"] == "dataset"
            and e["resource_org_id"] == owner.org_id}
    assert {("download_version", "ok"), ("download_version", "permission_denied"),
            ("preview_version", "ok"), ("get_dataset", "not_found")} <= seen, seen


def test_marker_is_nowhere_under_home(http: Any, services: Any, orgs: dict[str, Any]) -> None:
    home = Path(services.settings.home)  # blobs, keys and (on SQLite) the database and its WAL
    needle = MARKER.encode()
    hits = [str(p) for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert not hits, f"plaintext found in {hits}"
    # the data is really there, readable by its owner
    owner = orgs["owner"]
    assert needle in http.get(f"{API}/{owner.org}/cohort/versions/1/download", headers=owner.headers).content


def test_the_dataset_list_drops_a_grant_at_its_expiry(http: Any, orgs: dict[str, Any], world: Any) -> None:
    """The list's grant-derived view is cached with the received grants until the next expiry:
    an expired grant leaves the list at once, without any change that would drop the cache."""
    import time
    from datetime import UTC, datetime, timedelta

    owner, viewer = orgs["owner"], world.actor(world.org(), "admin")
    ends = datetime.now(UTC) + timedelta(seconds=3)
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{owner.org}/cohort",
                                          "permission": "compute", "grantee_org": viewer.org,
                                          "expires_at": ends.isoformat()}, headers=owner.headers)
    assert r.status_code == 201, r.text
    time.sleep(1.0)  # past the cache's revision poll: what follows is answered from the cache
    for _ in range(3):
        shared = http.get(API + "?scope=shared", headers=viewer.headers).json()["items"]
        assert [(d["full_name"], d["access"]) for d in shared] == [(f"{owner.org}/cohort", "compute")]
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.1)
    assert http.get(API + "?scope=shared", headers=viewer.headers).json()["items"] == []
    assert http.get(f"{API}/{owner.org}/cohort", headers=viewer.headers).status_code == 404
