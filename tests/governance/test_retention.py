"""Retention (issue 19 point 4), through the API on SQLite and PostgreSQL: a dataset's versions and
an organization's job logs carry a retention period; what has expired is purged (by an operator's
call, and on the schedule of a real job worker) and every purge is audited. Time passing is the
rows' own timestamps moved back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from support import start_worker, stop_worker, wait_for

from consortium.store.db import transaction
from consortium.store.tables.base import utcnow
from consortium.store.tables.data import DatasetVersion
from consortium.store.tables.jobs import Job, JobEvent


def _dataset(http: Any, actor: Any, name: str, part: int = 1) -> None:
    r = http.post("/api/v1/datasets/import-sample", headers=actor.headers,
                  json={"sample": "breast_cancer", "name": name, "partitions": 4, "part": part, "seed": 0})
    assert r.status_code == 201, r.text


def _age(services: Any, org: str, name: str, days: float) -> str:
    """Move the dataset's versions ``days`` into the past; returns the blob key of version 1."""
    from consortium.data import catalog

    with transaction(services.session_factory) as s:
        ds = catalog.find(s, org, name)
        s.execute(update(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
                  .values(created_at=utcnow() - timedelta(days=days)))
        return catalog.version(s, ds, 1).blob_key  # type: ignore[no-any-return]


def _purge(http: Any, operator: Any) -> dict[str, Any]:
    r = http.post("/api/v1/retention/purge", headers=operator.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_expired_dataset_versions_are_purged_and_audited(http: Any, world: Any, services: Any) -> None:
    owner = world.actor(world.org())
    operator = world.actor(world.org(), operator=True)
    _dataset(http, owner, "kept-short")
    _dataset(http, owner, "kept-forever", 2)
    r = http.put(f"/api/v1/datasets/{owner.org}/kept-short/retention", json={"days": 30}, headers=owner.headers)
    assert r.status_code == 200 and r.json() == {"kind": "dataset_versions", "target": f"{owner.org}/kept-short",
                                                 "days": 30}, r.text
    assert http.put(f"/api/v1/datasets/{owner.org}/kept-short/retention", json={"days": 0},
                    headers=owner.headers).status_code == 422
    listed = http.get("/api/v1/retention", headers=owner.headers).json()["items"]
    assert [(x["kind"], x["days"]) for x in listed] == [("dataset_versions", 30)]
    young = _age(services, owner.org, "kept-short", 10)
    assert _purge(http, operator)["dataset_versions"] == 0  # not expired yet
    assert services.blobs.store.exists(young)
    blob = _age(services, owner.org, "kept-short", 31)
    _age(services, owner.org, "kept-forever", 400)
    assert _purge(http, operator)["dataset_versions"] == 1
    assert http.get(f"/api/v1/datasets/{owner.org}/kept-short/versions/1", headers=owner.headers).status_code == 404
    assert http.get(f"/api/v1/datasets/{owner.org}/kept-forever/versions/1", headers=owner.headers).status_code == 200
    assert not services.blobs.store.exists(blob)
    events = http.get("/api/v1/audit", params={"action": "retention.", "limit": 10}, headers=owner.headers).json()
    assert [(e["action"], e["details"]["version"], e["details"]["days"]) for e in events["items"]] == \
        [("retention.purge_dataset_version", 1, 30)]


def test_a_version_a_job_reads_waits_for_the_next_purge(http: Any, world: Any, services: Any) -> None:
    owner = world.actor(world.org())
    operator = world.actor(world.org(), operator=True)
    _dataset(http, owner, "busy", 3)
    http.put(f"/api/v1/datasets/{owner.org}/busy/retention", json={"days": 1}, headers=owner.headers)
    job = http.post("/api/v1/jobs", headers=owner.headers, json={"recipe": {
        "name": "reads", "data": {"dataset": f"{owner.org}/busy", "target": "target"},
        "model": {"type": "logistic"}, "train": {"epochs": 1}}})
    assert job.status_code == 201, job.text
    _age(services, owner.org, "busy", 2)
    assert _purge(http, operator)["deferred"] >= 1
    assert http.get(f"/api/v1/datasets/{owner.org}/busy/versions/1", headers=owner.headers).status_code == 200


def test_job_logs_expire_after_the_job_ends_on_a_workers_schedule(http: Any, world: Any, services: Any,
                                                                  settings: Any) -> None:
    """A real worker purges on its own (every 0.2 s here); state events stay, log lines go."""
    from consortium.jobs import queue

    owner = world.actor(world.org())
    assert http.put("/api/v1/retention/job-logs", json={"days": 7}, headers=owner.headers).status_code == 200
    with transaction(services.session_factory) as s:
        old = queue.submit(s, org_id=owner.org_id, user_id=owner.user_id, kind="train", name="old", recipe={})
        new = queue.submit(s, org_id=owner.org_id, user_id=owner.user_id, kind="train", name="new", recipe={})
        for j in (old, new):
            queue.add_event(s, j.id, "log", {"message": "epoch 1"})
            queue.finish(s, j.id, "succeeded", result={})
        s.execute(update(Job).where(Job.id == old.id).values(finished_at=utcnow() - timedelta(days=8)))
        old_id, new_id = old.id, new.id

    def kinds(job_id: str) -> list[str]:
        with services.session_factory() as s:
            return sorted(s.scalars(select(JobEvent.kind).where(JobEvent.job_id == job_id)))

    assert "log" in kinds(old_id)
    worker = start_worker(settings, CONSORTIUM_RETENTION_EVERY_S="0.2")
    try:
        wait_for(lambda: "log" not in kinds(old_id), 60, 0.2, "the worker's purge")
    finally:
        stop_worker(worker)
    assert "state" in kinds(old_id) and "log" in kinds(new_id)
    events = http.get("/api/v1/audit", params={"action": "retention.purge_job_logs"}, headers=owner.headers).json()
    assert events["items"] and events["items"][0]["details"]["events"] >= 1


def test_prediction_logs_expire_with_their_deployments_retention_audited(http: Any, world: Any,
                                                                         services: Any) -> None:
    import secrets
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.registry import models as reg
    from consortium.store.tables.monitoring import PredictionRecord

    owner = world.actor(world.org())
    operator = world.actor(world.org(), operator=True)
    name = f"m-{secrets.token_hex(3)}"
    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org, name, onnx=tiny_classifier(), blobs=services.blobs, task="classification")
    dep = http.post("/api/v1/deployments", json={"name": name, "model": f"{name}:1"}, headers=owner.headers)
    assert dep.status_code == 201, dep.text
    r = http.patch(f"/api/v1/deployments/{name}/monitoring", json={"sample_rate": 1.0, "retention_days": 2},
                 headers=owner.headers)
    assert r.status_code == 200, r.text
    for _ in range(3):
        assert http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]},
                         headers=owner.headers).status_code == 200
    services.running_monitor().flush()
    dep_id = dep.json()["id"]
    with transaction(services.session_factory) as s:
        s.execute(update(PredictionRecord).where(PredictionRecord.deployment_id == dep_id)
                  .values(created_at=utcnow() - timedelta(days=3)))
    assert _purge(http, operator)["prediction_log_rows"] >= 3
    listed = http.get("/api/v1/retention", headers=owner.headers).json()["items"]
    assert {"kind": "prediction_log", "target": name, "days": 2} in listed
    events = http.get("/api/v1/audit", params={"action": "retention.purge_prediction_log"},
                      headers=owner.headers).json()["items"]
    assert events and events[0]["resource_id"] == dep_id and events[0]["details"]["rows"] >= 3
